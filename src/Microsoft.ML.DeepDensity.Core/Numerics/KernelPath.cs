using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>Instruction sets the engine's hand-vectorised kernels are written for, lowest first.</summary>
internal enum SimdLevel
{
    /// <summary>Scalar code only (any CPU).</summary>
    Portable = 0,
    /// <summary>AVX2 + FMA, 256-bit vectors.</summary>
    Avx2 = 1,
    /// <summary>AVX-512F (+ AVX2/FMA), 512-bit vectors.</summary>
    Avx512 = 2,
}

/// <summary>
/// Which kernel path the engine runs: the best the CPU supports, or — for tests that compare paths — a lower one
/// forced on the calling thread. Every path of a kernel computes the same results (see each kernel's remarks for
/// whether they are bit-identical or within a documented tolerance), so forcing a path never changes a model's meaning.
/// </summary>
internal static class KernelPath
{
    /// <summary>The highest level this CPU supports.</summary>
    public static readonly SimdLevel Best =
        Avx512F.IsSupported && Avx2.IsSupported && Fma.IsSupported ? SimdLevel.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? SimdLevel.Avx2
        : SimdLevel.Portable;

    [ThreadStatic] private static int t_forcedPlusOne;

    /// <summary>The level kernels called on this thread use: <see cref="Best"/> unless a lower one is forced.</summary>
    public static SimdLevel Current => t_forcedPlusOne == 0 ? Best : (SimdLevel)(t_forcedPlusOne - 1);

    /// <summary>A level is forced on this thread: kernels must run exactly that path (no size-based choice).</summary>
    public static bool IsForced => t_forcedPlusOne != 0;

    /// <summary>
    /// Forces <paramref name="level"/> (capped at <see cref="Best"/>) for kernels called on this thread until the
    /// returned scope is disposed. A parallel kernel reads the level once on the calling thread, and the blocks of
    /// <see cref="DeepDensityEnvironment.For"/> and <see cref="DeepDensityEnvironment.ForRowBlocks"/> run under the
    /// caller's forced level on whichever thread takes them (<see cref="Carried"/>), so a forced scoring call runs one
    /// path in all its blocks. Loops on <c>Parallel.For</c> (Deep GMM's EM steps, the RBM's enumeration of log Z) do not
    /// carry it: force a path for those with <see cref="DeepDensityEnvironment.MaxDegreeOfParallelism"/> = 1.
    /// </summary>
    public static Scope Force(SimdLevel level)
    {
        int previous = t_forcedPlusOne;
        t_forcedPlusOne = (int)(level < Best ? level : Best) + 1;
        return new Scope(previous);
    }

    /// <summary><paramref name="body"/> run under the calling thread's forced level on any thread (itself when nothing
    /// is forced: no allocation on the engine's ordinary path).</summary>
    public static Action<int> Carried(Action<int> body)
    {
        if (!IsForced) return body;
        var level = Current;
        return i =>
        {
            using var forced = Force(level);
            body(i);
        };
    }

    /// <summary>Restores the previous level when disposed.</summary>
    public readonly struct Scope(int previous) : IDisposable
    {
        public void Dispose() => t_forcedPlusOne = previous;
    }
}
