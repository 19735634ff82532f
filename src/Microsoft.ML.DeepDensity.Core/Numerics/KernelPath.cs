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
    /// returned scope is disposed. A parallel kernel reads the level once on the calling thread, so its worker blocks
    /// follow the forced path too.
    /// </summary>
    public static Scope Force(SimdLevel level)
    {
        int previous = t_forcedPlusOne;
        t_forcedPlusOne = (int)(level < Best ? level : Best) + 1;
        return new Scope(previous);
    }

    /// <summary>Restores the previous level when disposed.</summary>
    public readonly struct Scope(int previous) : IDisposable
    {
        public void Dispose() => t_forcedPlusOne = previous;
    }
}
