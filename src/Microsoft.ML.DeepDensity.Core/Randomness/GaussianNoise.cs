using System.Numerics.Tensors;

namespace Microsoft.ML.DeepDensity.Randomness;

/// <summary>Standard-normal noise in bulk (vectorised Box–Muller): for reparameterised samples of many rows at once.</summary>
/// <remarks>
/// Uniforms come from the stream in a fixed order (one 64-bit draw per pair of normals), so the values are a pure
/// function of the stream's state. Each uniform has 32 bits, so draws are bounded by |z| ≤ 6.7 (mass beyond ≈ 2e-11).
/// The sequence differs from <see cref="RandomStream.NextGaussian"/>.
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
            TensorPrimitives.SinCos(angle[..pairs], sin[..pairs], cos[..pairs]);
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
}
