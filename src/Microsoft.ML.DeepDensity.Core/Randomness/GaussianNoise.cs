using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Randomness;

/// <summary>Standard-normal noise in bulk (vectorised Box–Muller): for reparameterised samples of many rows at once.</summary>
/// <remarks>
/// Uniforms come from the stream in a fixed order (one 64-bit draw per pair of normals: 32 bits for the radius, 24 for
/// the angle), so the values are a pure function of the stream's state. The radius's uniform has 32 bits, so draws are
/// bounded by |z| ≤ 6.7 (mass beyond ≈ 2e-11). The sequence differs from <see cref="RandomStream.NextGaussian"/>. The
/// angle is drawn in whole turns and its sine and cosine are <see cref="VectorMath.SinCosTurns(float)"/>, whose 16-lane,
/// 8-lane and scalar versions give the same bits, so every kernel path draws the same noise.
/// </remarks>
internal static class GaussianNoise
{
    private const int Chunk = 128;

    /// <summary>Fills <paramref name="destination"/> with independent N(0, 1) draws.</summary>
    public static void Fill(RandomStream random, Span<float> destination)
    {
        Span<ulong> bits = stackalloc ulong[Chunk];
        Span<float> radius = stackalloc float[Chunk];
        Span<float> turns = stackalloc float[Chunk];
        Span<float> sin = stackalloc float[Chunk];
        Span<float> cos = stackalloc float[Chunk];
        int pos = 0;
        while (pos < destination.Length)
        {
            int pairs = Math.Min(Chunk, (destination.Length - pos + 1) / 2);
            random.FillUInt64(bits[..pairs]);
            Uniforms(bits[..pairs], radius, turns);
            var r = radius[..pairs];
            EagerTensorMath.BoxMullerRadii(r);
            SinCosTurns(turns[..pairs], sin, cos);
            int n = Math.Min(2 * pairs, destination.Length - pos);
            Interleave(r, cos, sin, destination.Slice(pos, n));
            pos += n;
        }
    }

    private const float TwoPow32Inv = 1f / 4294967296f, TwoPow24Inv = 1f / 16777216f;

    /// <summary>Each draw's uniforms: (low 32 bits + ½)·2^−32 in (0, 1] for the radius, its top 24 bits · 2^−24 in [0, 1)
    /// (exact in float) for the angle. Sixteen draws at a time with AVX-512 (the same conversions, the same bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Uniforms(ReadOnlySpan<ulong> bits, Span<float> radius, Span<float> turns)
    {
        int n = bits.Length, i = 0;
        if (KernelPath.Current == SimdLevel.Avx512)
        {
            ref ulong b = ref MemoryMarshal.GetReference(bits);
            ref float pr = ref MemoryMarshal.GetReference(radius);
            ref float pt = ref MemoryMarshal.GetReference(turns);
            var half = Vector512.Create(0.5f);
            for (; i + 16 <= n; i += 16)
            {
                var lo = Vector512.LoadUnsafe(ref b, (nuint)i);
                var hi = Vector512.LoadUnsafe(ref b, (nuint)i + 8);
                // Low 32 bits of each draw (vpmovqd), and the top 24 (a shift of 40, then the same narrowing).
                var low = Vector512.Create(Avx512F.ConvertToVector256UInt32(lo), Avx512F.ConvertToVector256UInt32(hi));
                var top = Vector512.Create(Avx512F.ConvertToVector256UInt32(Vector512.ShiftRightLogical(lo, 40)),
                    Avx512F.ConvertToVector256UInt32(Vector512.ShiftRightLogical(hi, 40)));
                ((Avx512F.ConvertToVector512Single(low) + half) * Vector512.Create(TwoPow32Inv)).StoreUnsafe(ref pr, (nuint)i);
                (Avx512F.ConvertToVector512Single(top) * Vector512.Create(TwoPow24Inv)).StoreUnsafe(ref pt, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            radius[i] = ((uint)bits[i] + 0.5f) * TwoPow32Inv;     // (0, 1]
            turns[i] = (uint)(bits[i] >> 40) * TwoPow24Inv;        // [0, 1), exact in float
        }
    }

    /// <summary>destination[2i] = r[i]·cos[i], destination[2i + 1] = r[i]·sin[i] (the last, odd one: its cosine only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Interleave(ReadOnlySpan<float> r, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, Span<float> destination)
    {
        int n = destination.Length, full = n / 2, i = 0;
        if (KernelPath.Current == SimdLevel.Avx512)
        {
            ref float pr = ref MemoryMarshal.GetReference(r);
            ref float pc = ref MemoryMarshal.GetReference(cos);
            ref float ps = ref MemoryMarshal.GetReference(sin);
            ref float pd = ref MemoryMarshal.GetReference(destination);
            var first = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            var second = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            for (; i + 16 <= full; i += 16)
            {
                var radii = Vector512.LoadUnsafe(ref pr, (nuint)i);
                var x = radii * Vector512.LoadUnsafe(ref pc, (nuint)i);
                var y = radii * Vector512.LoadUnsafe(ref ps, (nuint)i);
                Avx512F.PermuteVar16x32x2(x, first, y).StoreUnsafe(ref pd, (nuint)(2 * i));
                Avx512F.PermuteVar16x32x2(x, second, y).StoreUnsafe(ref pd, (nuint)(2 * i + 16));
            }
        }
        for (; i < full; i++)
        {
            destination[2 * i] = r[i] * cos[i];
            destination[2 * i + 1] = r[i] * sin[i];
        }
        if ((n & 1) != 0) destination[n - 1] = r[full] * cos[full];
    }

    /// <summary>sin 2πt and cos 2πt of every t in <paramref name="turns"/>: 16 or 8 lanes at a time on the AVX paths,
    /// scalar on the portable path and for the tail, all with the same bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SinCosTurns(ReadOnlySpan<float> turns, Span<float> sin, Span<float> cos)
    {
        int n = turns.Length, i = 0;
        if (sin.Length < n || cos.Length < n) throw new ArgumentException("A destination is shorter than the angles.");
        ref float t = ref MemoryMarshal.GetReference(turns);
        ref float s = ref MemoryMarshal.GetReference(sin);
        ref float c = ref MemoryMarshal.GetReference(cos);
        var level = KernelPath.Current;
        if (level == SimdLevel.Avx512)
            for (; i + 16 <= n; i += 16)
            {
                var (vs, vc) = VectorMath.SinCosTurns(Vector512.LoadUnsafe(ref t, (nuint)i));
                vs.StoreUnsafe(ref s, (nuint)i); vc.StoreUnsafe(ref c, (nuint)i);
            }
        if (level >= SimdLevel.Avx2)
            for (; i + 8 <= n; i += 8)
            {
                var (vs, vc) = VectorMath.SinCosTurns(Vector256.LoadUnsafe(ref t, (nuint)i));
                vs.StoreUnsafe(ref s, (nuint)i); vc.StoreUnsafe(ref c, (nuint)i);
            }
        for (; i < n; i++) (sin[i], cos[i]) = VectorMath.SinCosTurns(turns[i]);
    }
}
