using System.Collections.Concurrent;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// Scratch buffers of one model, one per concurrently working thread, reused across calls so that scoring allocates
/// nothing once warm, and released with the model that owns the pool (a thread-static cache would keep the last model's
/// buffers alive on every thread that used it). Every model's scoring scratch comes from one of these.
/// </summary>
/// <remarks>A scratch is taken for one call or one block and returned after it, on whatever thread: the pool holds at
/// most as many as ever ran at once. Arithmetic never depends on which scratch a call gets.</remarks>
internal sealed class ScratchPool<T>(Func<T>? create = null) where T : class
{
    private readonly ConcurrentBag<T> _free = new();

    /// <summary>A free scratch, or a new one from the pool's constructor argument.</summary>
    public T Rent() => _free.TryTake(out var scratch) ? scratch
        : (create ?? throw new InvalidOperationException("This pool makes its scratch per call (Rent with a size)."))();

    /// <summary>A free scratch that <paramref name="fits"/> (others met on the way are dropped: they were made for other
    /// settings), or a new one from <paramref name="make"/>.</summary>
    public T Rent<TArg>(Func<T, TArg, bool> fits, Func<TArg, T> make, TArg arg)
    {
        while (_free.TryTake(out var scratch))
            if (fits(scratch, arg)) return scratch;
        return make(arg);
    }

    /// <summary>Gives <paramref name="scratch"/> back for the next call.</summary>
    public void Return(T scratch) => _free.Add(scratch);
}
