using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Nvil;

/// <summary>
/// Exact quantities of a tiny sigmoid belief network by enumerating every latent configuration, computed in float64 from
/// the layers' weights (independently of <see cref="NvilNetwork"/>'s batched code).
/// </summary>
internal static class NvilExact
{
    /// <summary>A network with N(0, std²) weights and biases (prior logits included).</summary>
    public static NvilNetwork RandomNetwork(int d, int[] latent, ulong seed, float std)
    {
        var net = new NvilNetwork(d, latent);
        var rng = new RandomStream(seed);
        foreach (var p in net.Parameters.Items) rng.FillGaussian(p.Value, 0f, std);
        return net;
    }

    /// <summary>Uniform random bits.</summary>
    public static Data.RowMatrix RandomBits(int rows, int d, ulong seed)
    {
        var rng = new RandomStream(seed);
        var m = new Data.RowMatrix(rows, d);
        for (int i = 0; i < m.Values.Length; i++) m.Values[i] = rng.NextInt(2);
        return m;
    }

    /// <summary>log p(x) = log Σ_h p(x, h).</summary>
    public static double LogLikelihood(NvilNetwork net, ReadOnlySpan<float> x)
    {
        var terms = new List<double>();
        foreach (var h in Configurations(net)) terms.Add(LogJoint(net, x, h));
        double max = terms.Max();
        return max + Math.Log(terms.Sum(t => Math.Exp(t - max)));
    }

    /// <summary>The variational bound Σ_h q(h | x) (log p(x, h) − log q(h | x)).</summary>
    public static double Bound(NvilNetwork net, ReadOnlySpan<float> x)
    {
        double b = 0;
        foreach (var h in Configurations(net))
        {
            double lq = LogPosterior(net, x, h);
            b += Math.Exp(lq) * (LogJoint(net, x, h) - lq);
        }
        return b;
    }

    /// <summary>Every latent configuration (one array per layer).</summary>
    public static IEnumerable<float[][]> Configurations(NvilNetwork net)
    {
        int bits = net.Latent.Sum();
        for (long mask = 0; mask < 1L << bits; mask++)
        {
            var h = new float[net.Layers][];
            int bit = 0;
            for (int l = 0; l < net.Layers; l++)
            {
                h[l] = new float[net.Latent[l]];
                for (int u = 0; u < h[l].Length; u++, bit++) h[l][u] = (mask >> bit) & 1;
            }
            yield return h;
        }
    }

    public static double LogJoint(NvilNetwork net, ReadOnlySpan<float> x, float[][] h) => LogJointTerms(net, x, h).Sum();

    public static double LogPosterior(NvilNetwork net, ReadOnlySpan<float> x, float[][] h) => LogPosteriorTerms(net, x, h).Sum();

    /// <summary>The terms of log p(x, h): [log p(x | h_0), log p(h_0 | h_1), …, log p(h_{L−2} | h_{L−1}), log p(h_{L−1})].</summary>
    public static double[] LogJointTerms(NvilNetwork net, ReadOnlySpan<float> x, float[][] h)
    {
        var terms = new double[net.Layers + 1];
        terms[0] = LogBernoulli(x, Logits(net.Decoders[0].Layers[0], h[0]));
        for (int l = 1; l < net.Layers; l++) terms[l] = LogBernoulli(h[l - 1], Logits(net.Decoders[l].Layers[0], h[l]));
        terms[^1] = LogBernoulli(h[^1], net.Prior.Value.Select(v => (double)v).ToArray());
        return terms;
    }

    /// <summary>The terms of log q(h | x): [log q(h_0 | x), log q(h_1 | h_0), …].</summary>
    public static double[] LogPosteriorTerms(NvilNetwork net, ReadOnlySpan<float> x, float[][] h)
    {
        var terms = new double[net.Layers];
        terms[0] = LogBernoulli(h[0], Logits(net.Encoders[0].Layers[0], x));
        for (int l = 1; l < net.Layers; l++) terms[l] = LogBernoulli(h[l], Logits(net.Encoders[l].Layers[0], h[l - 1]));
        return terms;
    }

    /// <summary>The logits of a dense layer (float64), z = b + Wᵀ input.</summary>
    public static double[] Logits(DenseLayer layer, ReadOnlySpan<float> input)
    {
        var w = layer.Weight.Value;
        var z = layer.Bias.Value.Select(v => (double)v).ToArray();
        for (int i = 0; i < layer.Inputs; i++)
            for (int o = 0; o < layer.Outputs; o++) z[o] += input[i] * (double)w[i * layer.Outputs + o];
        return z;
    }

    private static double LogBernoulli(ReadOnlySpan<float> v, double[] logits)
    {
        double s = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            double l = logits[i];
            s += v[i] * l - (Math.Max(l, 0) + Math.Log(1 + Math.Exp(-Math.Abs(l))));
        }
        return s;
    }
}
