using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Randomness;
using Xunit.Abstractions;

namespace Microsoft.ML.DeepDensity.Tests.DeepGmm;

public class ScratchTests
{
    private readonly ITestOutputHelper _o;
    public ScratchTests(ITestOutputHelper o) => _o = o;

    [Fact]
    public void Timing()
    {
        int d = 63, m = 64, B = 4;
        var rng = new RandomStream(1);
        var om = new List<double[]>(); var t = new List<double[]>(); var c = new List<double>(); var s = new List<double[]>();
        for (int b = 0; b < B; b++)
        {
            var o = new double[d * d]; for (int i = 0; i < d; i++) o[i * d + i] = 1 + rng.NextDouble();
            om.Add(o); t.Add(new double[d]); c.Add(0);
            var g = new double[m * m];
            for (int r = 0; r < 200; r++) { var u = new double[m]; for (int i = 0; i < d; i++) u[i] = rng.NextGaussian(); u[d] = 1; for (int i = 0; i < m; i++) for (int k = 0; k < m; k++) g[i * m + k] += u[i] * u[k]; }
            s.Add(g);
        }
        var obj = new NodeObjective(d, om, t, c, s, 1e-4, false);
        var w = new double[d * m]; for (int i = 0; i < d; i++) w[i * m + i] = 1;
        var grad = new double[d * m];
        obj.Value(w, grad);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 100; i++) obj.Value(w, grad);
        _o.WriteLine($"Value: {sw.Elapsed.TotalMilliseconds / 100:F3} ms");
        var A = new double[d * d]; var Bm = new double[d * m]; var C = new double[d * m]; var inv2 = new double[d * d];
        for (int i = 0; i < A.Length; i++) A[i] = rng.NextGaussian();
        sw.Restart();
        for (int i = 0; i < 1000; i++) Microsoft.ML.DeepDensity.Numerics.DenseDouble.Multiply(A, Bm, C, d, d, m);
        _o.WriteLine($"DenseDouble.Multiply 63x63x64: {sw.Elapsed.TotalMilliseconds / 1000:F3} ms");
        sw.Restart();
        for (int i = 0; i < 100; i++) Microsoft.ML.DeepDensity.Numerics.DenseDouble.InvertLogAbsDet(A, inv2, d);
        _o.WriteLine($"DenseDouble.Invert 63: {sw.Elapsed.TotalMilliseconds / 100:F3} ms");
        var q = Matrix<double>.Build.Dense(d, d, (a, b) => w[a * m + b] + 0.01 * a * b);
        sw.Restart();
        for (int i = 0; i < 100; i++) { var lu = q.LU(); var inv = lu.Inverse(); }
        _o.WriteLine($"LU+inv: {sw.Elapsed.TotalMilliseconds / 100:F3} ms");
        sw.Restart();
        var (_, _, ev) = obj.Maximize(w, 50, CancellationToken.None);
        _o.WriteLine($"Maximize 50: {sw.Elapsed.TotalMilliseconds:F1} ms, {ev} evals");
        var inner = new Stopwatch();
        int calls = 0;
        System.Func<MathNet.Numerics.LinearAlgebra.Vector<double>, (double, MathNet.Numerics.LinearAlgebra.Vector<double>)> f = v =>
        {
            inner.Start(); calls++;
            var x = v.ToArray(); double val = obj.Value(x, grad);
            var g = MathNet.Numerics.LinearAlgebra.Vector<double>.Build.Dense(grad.Length, i => -grad[i]);
            inner.Stop();
            return (-val, g);
        };
        foreach (int mem in new[] { 3, 7 })
        {
            inner.Reset(); calls = 0;
            sw.Restart();
            try { new MathNet.Numerics.Optimization.LimitedMemoryBfgsMinimizer(1e-5, 1e-12, 1e-12, mem, 50).FindMinimum(MathNet.Numerics.Optimization.ObjectiveFunction.Gradient(f), MathNet.Numerics.LinearAlgebra.Vector<double>.Build.DenseOfArray(w)); } catch (Exception e) { _o.WriteLine(e.GetType().Name); }
            _o.WriteLine($"mem {mem}: total {sw.Elapsed.TotalMilliseconds:F0} ms, inside objective {inner.Elapsed.TotalMilliseconds:F0} ms, {calls} calls");
        }
    }
}
