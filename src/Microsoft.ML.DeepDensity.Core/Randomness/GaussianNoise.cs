using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Randomness;

/// <summary>Standard-normal noise in bulk (vectorised Box–Muller): for reparameterised samples of many rows at once.</summary>
/// <remarks>
/// Uniforms come from the stream in a fixed order (one 64-bit draw per pair of normals), so the values are a pure
/// function of the stream's state. Each uniform has 32 bits, so draws are bounded by |z| ≤ 6.7 (mass beyond ≈ 2e-11).
/// The sequence differs from <see cref="RandomStream.NextGaussian"/>. The sine and cosine are the runtime's vector
/// ones on the AVX paths and <see cref="MathF.SinCos"/> on the portable path: the paths agree to float rounding, not bit
/// for bit (both are deterministic on a given machine).
/// </remarks>
internal static class GaussianNoise
{
    private const int Chunk = 128;

    /// <summary>Fills <paramref name="destination"/> with independent N(0, 1) draws.</summary>
    public static void Fill(RandomStream random, Span<float> destination)
    {
        Span<float> radius = stackalloc float[Chunk];
        Span<float> angle = stackalloc float[Chunk];
        Span<float> sin = stackalloc float[Chunk];
        Span<float> cos = stackalloc float[Chunk];
        const float TwoPow32Inv = 1f / 4294967296f;
        int pos = 0;
        while (pos < destination.Length)
        {
            int pairs = Math.Min(Chunk, (destination.Length - pos + 1) / 2);
            for (int i = 0; i < pairs; i++)
            {
                ulong bits = random.NextUInt64();
                radius[i] = ((uint)bits + 0.5f) * TwoPow32Inv;                 // (0, 1]
                angle[i] = (uint)(bits >> 32) * (TwoPow32Inv * 2f * MathF.PI); // [0, 2π)
            }
            var r = radius[..pairs];
            TensorPrimitives.Log(r, r);
            TensorPrimitives.Multiply(r, -2f, r);
            TensorPrimitives.Sqrt(r, r);
            SinCos(angle[..pairs], sin, cos);
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

    /// <summary>sin and cos of every angle: vector lanes on the AVX paths (TensorPrimitives.SinCos calls the scalar library
    /// function per element, which was most of the IWAE's noise cost), scalar on the portable path and for the tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SinCos(ReadOnlySpan<float> angle, Span<float> sin, Span<float> cos)
    {
        int n = angle.Length, i = 0;
        if (sin.Length < n || cos.Length < n) throw new ArgumentException("A destination is shorter than the angles.");
#if NET9_0_OR_GREATER // Vector512/256.SinCos are .NET 9 APIs; the net8.0 build takes the scalar loop (same values to float rounding)
        var level = KernelPath.Current;
        if (level == SimdLevel.Avx512)
            for (; i + 16 <= n; i += 16)
            {
                var (s, c) = Vector512.SinCos(Vector512.Create(angle.Slice(i, 16)));
                s.CopyTo(sin.Slice(i, 16)); c.CopyTo(cos.Slice(i, 16));
            }
        if (level >= SimdLevel.Avx2)
            for (; i + 8 <= n; i += 8)
            {
                var (s, c) = Vector256.SinCos(Vector256.Create(angle.Slice(i, 8)));
                s.CopyTo(sin.Slice(i, 8)); c.CopyTo(cos.Slice(i, 8));
            }
#endif
        for (; i < n; i++) (sin[i], cos[i]) = MathF.SinCos(angle[i]);
    }
}
