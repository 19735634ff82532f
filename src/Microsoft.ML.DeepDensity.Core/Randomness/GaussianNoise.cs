using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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
        Span<float> radius = stackalloc float[Chunk];
        Span<float> turns = stackalloc float[Chunk];
        Span<float> sin = stackalloc float[Chunk];
        Span<float> cos = stackalloc float[Chunk];
        const float TwoPow32Inv = 1f / 4294967296f, TwoPow24Inv = 1f / 16777216f;
        int pos = 0;
        while (pos < destination.Length)
        {
            int pairs = Math.Min(Chunk, (destination.Length - pos + 1) / 2);
            for (int i = 0; i < pairs; i++)
            {
                ulong bits = random.NextUInt64();
                radius[i] = ((uint)bits + 0.5f) * TwoPow32Inv;     // (0, 1]
                turns[i] = (uint)(bits >> 40) * TwoPow24Inv;        // [0, 1), exact in float
            }
            var r = radius[..pairs];
            EagerTensorMath.BoxMullerRadii(r);
            SinCosTurns(turns[..pairs], sin, cos);
            int n = Math.Min(2 * pairs, destination.Length - pos);
            var dst = destination.Slice(pos, n);
            int full = n / 2;
            for (int i = 0; i < full; i++)
            {
                dst[2 * i] = r[i] * cos[i];
                dst[2 * i + 1] = r[i] * sin[i];
            }
            if ((n & 1) != 0) dst[n - 1] = r[full] * cos[full];
            pos += n;
        }
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
