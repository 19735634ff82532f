using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Randomness;

/// <summary>
/// Seeded, splittable pseudo-random stream (xoshiro256** seeded through SplitMix64).
/// </summary>
/// <remarks>
/// <see cref="Fork(ulong)"/> derives a child stream from this stream's <em>seed key</em> and a caller-chosen key,
/// not from its current state, so the children a computation forks (per epoch, per row block, per thread) are the
/// same whatever order or thread they are drawn in. That is what makes seeded training and sampling reproducible
/// independently of parallel scheduling.
/// </remarks>
public sealed class RandomStream
{
    private ulong _s0, _s1, _s2, _s3;
    private ulong _key; // not readonly: ForkInto re-seeds a scratch stream in place
    private ulong _forkOffset; // added to every Fork key (WithForkOffset); 0 for every stream made by a seed
    private bool _hasSpareGaussian;
    private double _spareGaussian;

    /// <summary>A stream determined entirely by <paramref name="seed"/>.</summary>
    public RandomStream(ulong seed) => Seed(seed);

    private void Seed(ulong seed)
    {
        _key = Mix(seed ^ 0x9E3779B97F4A7C15UL);
        ulong sm = _key;
        _s0 = SplitMix(ref sm); _s1 = SplitMix(ref sm); _s2 = SplitMix(ref sm); _s3 = SplitMix(ref sm);
        if ((_s0 | _s1 | _s2 | _s3) == 0) _s0 = 1;
        _hasSpareGaussian = false;
        _spareGaussian = 0;
        _forkOffset = 0;
    }

    /// <summary>The key that identifies this stream (its children are derived from it).</summary>
    public ulong Key => _key;

    /// <summary>An independent child stream identified by <paramref name="key"/>; does not advance this stream.</summary>
    public RandomStream Fork(ulong key) => new(ChildSeed(key));

    /// <summary>Makes <paramref name="child"/> the stream <see cref="Fork(ulong)"/> would return, in place (no allocation:
    /// one-row scoring reuses its streams).</summary>
    internal void ForkInto(ulong key, RandomStream child) => child.Seed(ChildSeed(key));

    private ulong ChildSeed(ulong key) => Mix(_key + Mix(key + _forkOffset + 0xD1B54A32D192ED03UL));

    /// <summary>
    /// A copy of this stream (same key and state) whose <c>Fork(k)</c> is this stream's <c>Fork(offset + k)</c>: a
    /// computation that forks one child per block, handed only the blocks from <paramref name="offset"/> on (a partition
    /// of a batch), draws the noise those blocks get in the whole batch (<see cref="Training.GradientPartial"/>).
    /// </summary>
    internal RandomStream WithForkOffset(ulong offset)
    {
        var copy = (RandomStream)MemberwiseClone();
        copy._forkOffset = _forkOffset + offset;
        return copy;
    }

    /// <summary>Child for a two-part key (e.g. epoch and block).</summary>
    public RandomStream Fork(ulong key1, ulong key2) => Fork(key1).Fork(key2);

    /// <summary>The next 64 uniformly distributed bits; advances this stream.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextUInt64()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3; _s2 ^= t; _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>The next <paramref name="destination"/>.Length draws of <see cref="NextUInt64"/>, in order, with the
    /// state in locals (registers) rather than fields for the loop.</summary>
    internal void FillUInt64(Span<ulong> destination)
    {
        ulong s0 = _s0, s1 = _s1, s2 = _s2, s3 = _s3;
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = RotateLeft(s1 * 5, 7) * 9;
            ulong t = s1 << 17;
            s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = RotateLeft(s3, 45);
        }
        _s0 = s0; _s1 = s1; _s2 = s2; _s3 = s3;
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform float in [0, 1) with 24 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float NextSingle() => (NextUInt64() >> 40) * (1f / (1 << 24));

    /// <summary>Uniform integer in [0, <paramref name="exclusiveMax"/>) without modulo bias (Lemire's method).</summary>
    public int NextInt(int exclusiveMax)
    {
        if (exclusiveMax <= 0) throw new ArgumentOutOfRangeException(nameof(exclusiveMax));
        ulong range = (ulong)exclusiveMax;
        UInt128 m = (UInt128)NextUInt64() * range;
        ulong low = (ulong)m;
        if (low < range)
        {
            ulong threshold = (0UL - range) % range;
            while (low < threshold) { m = (UInt128)NextUInt64() * range; low = (ulong)m; }
        }
        return (int)(m >> 64);
    }

    /// <summary>Standard normal draw (Marsaglia polar method, pairs cached).</summary>
    public double NextGaussian()
    {
        if (_hasSpareGaussian) { _hasSpareGaussian = false; return _spareGaussian; }
        double u, v, s;
        do
        {
            u = 2 * NextDouble() - 1;
            v = 2 * NextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        double f = Math.Sqrt(-2 * Math.Log(s) / s);
        _spareGaussian = v * f;
        _hasSpareGaussian = true;
        return u * f;
    }

    /// <summary>Fills <paramref name="destination"/> with N(mean, std²) draws.</summary>
    public void FillGaussian(Span<float> destination, float mean = 0f, float std = 1f)
    {
        for (int i = 0; i < destination.Length; i++) destination[i] = mean + std * (float)NextGaussian();
    }

    /// <summary>Tests: use the scalar form of the lanes even where AVX2 is available (it must give the same values).</summary>
    internal static bool ScalarLanesOnly;

    /// <summary>Spans at least this long are filled from four interleaved xoshiro256** lanes (vectorised).</summary>
    private const int LaneFillThreshold = 64;

    /// <summary>
    /// Fills <paramref name="destination"/> with U[low, high) draws (24 random bits each). Short spans take consecutive
    /// <see cref="NextSingle"/> draws; from 64 values on, four xoshiro256** lanes seeded (through SplitMix64) by four draws
    /// of this stream each give two 24-bit values per step, so AVX2 makes eight uniforms per step. The values are a pure
    /// function of this stream's state and the length, the same with or without AVX2.
    /// </summary>
    public void FillUniform(Span<float> destination, float low = 0f, float high = 1f)
    {
        float w = high - low;
        if (destination.Length >= LaneFillThreshold)
        {
            FillUniformLanes(destination, low, w);
            return;
        }
        // The same draws as NextSingle in a loop, with the state in locals (registers) rather than fields.
        ulong s0 = _s0, s1 = _s1, s2 = _s2, s3 = _s3;
        for (int i = 0; i < destination.Length; i++)
        {
            ulong result = RotateLeft(s1 * 5, 7) * 9;
            ulong t = s1 << 17;
            s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = RotateLeft(s3, 45);
            destination[i] = low + w * ((result >> 40) * (1f / (1 << 24)));
        }
        _s0 = s0; _s1 = s1; _s2 = s2; _s3 = s3;
    }

    private unsafe void FillUniformLanes(Span<float> destination, float low, float w)
    {
        // Lane j's state: SplitMix64 from the j-th of four draws of this stream (stored word-major: state word, then lane).
        ulong* state = stackalloc ulong[16];
        for (int lane = 0; lane < 4; lane++)
        {
            ulong sm = NextUInt64();
            for (int word = 0; word < 4; word++) state[word * 4 + lane] = SplitMix(ref sm);
            if ((state[lane] | state[4 + lane] | state[8 + lane] | state[12 + lane]) == 0) state[lane] = 1;
        }
        int n = destination.Length, i = 0;
        const float scale = 1f / (1 << 24);
        fixed (float* dst = destination)
        {
            if (Avx2.IsSupported && !ScalarLanesOnly)
            {
                var s0 = Avx.LoadVector256(state); var s1 = Avx.LoadVector256(state + 4);
                var s2 = Avx.LoadVector256(state + 8); var s3 = Avx.LoadVector256(state + 12);
                var mask24 = Vector256.Create(0xFFFFFFUL);
                var vScale = Vector256.Create(scale); var vw = Vector256.Create(w); var vLow = Vector256.Create(low);
                for (; i + 8 <= n; i += 8)
                {
                    var x = NextLanes(ref s0, ref s1, ref s2, ref s3);
                    var y = Avx2.Or(Avx2.ShiftRightLogical(x, 40), Avx2.ShiftLeftLogical(Avx2.And(Avx2.ShiftRightLogical(x, 8), mask24), 32));
                    var u = Avx.Multiply(Avx.ConvertToVector256Single(y.AsInt32()), vScale);
                    Avx.Store(dst + i, Avx.Add(vLow, Avx.Multiply(vw, u)));
                }
                Avx.Store(state, s0); Avx.Store(state + 4, s1); Avx.Store(state + 8, s2); Avx.Store(state + 12, s3);
            }
            // Scalar form of the same lanes (tail, or no AVX2).
            uint* pair = stackalloc uint[8];
            while (i < n)
            {
                for (int lane = 0; lane < 4; lane++)
                {
                    ulong a = state[lane], b = state[4 + lane], c = state[8 + lane], d = state[12 + lane];
                    ulong x = RotateLeft(b * 5, 7) * 9;
                    ulong t = b << 17;
                    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = RotateLeft(d, 45);
                    state[lane] = a; state[4 + lane] = b; state[8 + lane] = c; state[12 + lane] = d;
                    pair[2 * lane] = (uint)(x >> 40);
                    pair[2 * lane + 1] = (uint)((x >> 8) & 0xFFFFFF);
                }
                for (int j = 0; j < 8 && i < n; j++, i++) dst[i] = low + w * ((float)(int)pair[j] * scale);
            }
        }
    }

    /// <summary>One xoshiro256** step of four lanes (x·5 and x·9 as shifts and adds: AVX2 has no 64-bit multiply).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> NextLanes(ref Vector256<ulong> s0, ref Vector256<ulong> s1, ref Vector256<ulong> s2, ref Vector256<ulong> s3)
    {
        var x5 = Avx2.Add(Avx2.ShiftLeftLogical(s1, 2), s1);
        var r = Avx2.Or(Avx2.ShiftLeftLogical(x5, 7), Avx2.ShiftRightLogical(x5, 57));
        var result = Avx2.Add(Avx2.ShiftLeftLogical(r, 3), r);
        var t = Avx2.ShiftLeftLogical(s1, 17);
        s2 = Avx2.Xor(s2, s0); s3 = Avx2.Xor(s3, s1); s1 = Avx2.Xor(s1, s2); s0 = Avx2.Xor(s0, s3); s2 = Avx2.Xor(s2, t);
        s3 = Avx2.Or(Avx2.ShiftLeftLogical(s3, 45), Avx2.ShiftRightLogical(s3, 19));
        return result;
    }

    /// <summary>Fisher–Yates shuffle.</summary>
    public void Shuffle<T>(Span<T> items) => Shuffle(items, int.MaxValue, null);

    /// <summary>The same shuffle (the same draws) with <paramref name="check"/> called every <paramref name="stepsPerCheck"/>
    /// steps: a Fit's preparation observes its cancellation token there (a shuffle of ten million indices takes a second).</summary>
    internal void Shuffle<T>(Span<T> items, int stepsPerCheck, Action? check)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            if (check is not null && i % stepsPerCheck == 0) check();
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>Index drawn from the categorical distribution <paramref name="probabilities"/> (need not be normalised).</summary>
    public int NextCategorical(ReadOnlySpan<float> probabilities)
    {
        double total = 0;
        foreach (var p in probabilities) total += p;
        double u = NextDouble() * total, acc = 0;
        for (int i = 0; i < probabilities.Length; i++)
        {
            acc += probabilities[i];
            if (u < acc) return i;
        }
        // Rounding: return the last index with positive mass.
        for (int i = probabilities.Length - 1; i >= 0; i--) if (probabilities[i] > 0) return i;
        return probabilities.Length - 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));

    private static ulong SplitMix(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        return Mix(state);
    }

    /// <summary>SplitMix64 finaliser: a bijective 64-bit mixer.</summary>
    internal static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
