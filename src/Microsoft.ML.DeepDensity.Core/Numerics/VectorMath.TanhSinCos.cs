using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

// tanh for the hidden layers and sin/cos of whole turns for the Box–Muller noise, in eight and sixteen lanes. The
// runtime's Vector512/Vector256 Tanh and SinCos widen to double (about 1 ns per element on this machine, the largest
// element-wise costs of an IWAE evaluation after the GEMMs). Both versions of each take the same steps with the same
// constants, so they give the same bits; SinCosTurns also has a scalar version with the same bits.
internal static partial class VectorMath
{
    // tanh |x| = −t / (t + 2) with t = expm1(−2|x|) in (−1, 0]: one exponential and one division for every lane, no
    // branch between a series and the exponential (which cost both in every vector). expm1 y = 2^n·(p + 1) − 1 =
    // fma(2^n, p, 2^n − 1) with n = round(y·log2 e), r = y − n·ln 2 (|r| ≤ ln 2 / 2) and p = expm1 r = r + r²·Q(r), Q the
    // Taylor series to r^7 (truncation < 2e-8 relative): near 0 (n = 0) t is p itself, so tanh keeps its relative accuracy
    // there without cancellation. |x| is capped at 10 first (tanh 10 rounds to 1; 2^n stays normal).
    private const float TanhCap = 10f;
    private const float Expm1Q2 = 1f / 2, Expm1Q3 = 1f / 6, Expm1Q4 = 1f / 24, Expm1Q5 = 1f / 120, Expm1Q6 = 1f / 720, Expm1Q7 = 1f / 5040;

    // sin 2πf = f·S(f²) and cos 2πf = C(f²) for |f| ≤ 1/8 (Taylor series in f to degree 9 and 10: truncation error < 2e-9).
    private const float Sin1 = 6.28318530718f, Sin3 = -41.3417022404f, Sin5 = 81.6052492761f, Sin7 = -76.7058597531f, Sin9 = 42.0586939449f;
    private const float Cos2 = -19.7392088022f, Cos4 = 64.9393940227f, Cos6 = -85.4568172067f, Cos8 = 60.2446413719f, Cos10 = -26.4262567834f;

    /// <summary>tanh per lane (relative error below 3e-7; NaN stays NaN, ±∞ gives ±1). AVX-512F only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Tanh(Vector512<float> x)
    {
        var sign = Vector512.Create(0x80000000u).AsSingle();
        // Operand order makes vminps return |x| when it is NaN.
        var y = Avx512F.Min(Vector512.Create(TanhCap), Vector512.AndNot(x, sign)) * Vector512.Create(-2f);
        var n = Avx512F.RoundScale(y * Vector512.Create(Log2E), 0); // to nearest, ties to even (MathF.Round)
        var r = Avx512F.FusedMultiplyAdd(-n, Vector512.Create(Ln2High), y);
        r = Avx512F.FusedMultiplyAdd(-n, Vector512.Create(Ln2Low), r);
        var q = Vector512.Create(Expm1Q7);
        q = Avx512F.FusedMultiplyAdd(q, r, Vector512.Create(Expm1Q6));
        q = Avx512F.FusedMultiplyAdd(q, r, Vector512.Create(Expm1Q5));
        q = Avx512F.FusedMultiplyAdd(q, r, Vector512.Create(Expm1Q4));
        q = Avx512F.FusedMultiplyAdd(q, r, Vector512.Create(Expm1Q3));
        q = Avx512F.FusedMultiplyAdd(q, r, Vector512.Create(Expm1Q2));
        var p = Avx512F.FusedMultiplyAdd(r * r, q, r);
        var s = Avx512F.Scale(Vector512.Create(1f), n);
        var t = Avx512F.FusedMultiplyAdd(s, p, s - Vector512.Create(1f));
        // t / (t + 2) is −|tanh x| (or ±0): its magnitude with the sign of x (so tanh ±0 = ±0).
        return Vector512.AndNot(t / (t + Vector512.Create(2f)), sign) | (x & sign);
    }

    /// <summary>Eight-lane <see cref="Tanh(Vector512{float})"/> (same steps, same bits). AVX2 and FMA only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Tanh(Vector256<float> x)
    {
        var sign = Vector256.Create(0x80000000u).AsSingle();
        var y = Avx.Multiply(Avx.Min(Vector256.Create(TanhCap), Avx.AndNot(sign, x)), Vector256.Create(-2f));
        var n = Avx.RoundToNearestInteger(Avx.Multiply(y, Vector256.Create(Log2E)));
        var r = Fma.MultiplyAddNegated(n, Vector256.Create(Ln2High), y);
        r = Fma.MultiplyAddNegated(n, Vector256.Create(Ln2Low), r);
        var q = Vector256.Create(Expm1Q7);
        q = Fma.MultiplyAdd(q, r, Vector256.Create(Expm1Q6));
        q = Fma.MultiplyAdd(q, r, Vector256.Create(Expm1Q5));
        q = Fma.MultiplyAdd(q, r, Vector256.Create(Expm1Q4));
        q = Fma.MultiplyAdd(q, r, Vector256.Create(Expm1Q3));
        q = Fma.MultiplyAdd(q, r, Vector256.Create(Expm1Q2));
        var p = Fma.MultiplyAdd(Avx.Multiply(r, r), q, r);
        // 2^n for n in [−29, 0] (exact; a NaN lane's n converts to int.MinValue, and its p is NaN anyway).
        var s = Avx2.ShiftLeftLogical(Avx2.Add(Avx.ConvertToVector256Int32(n), Vector256.Create(127)), 23).AsSingle();
        var t = Fma.MultiplyAdd(s, p, Avx.Subtract(s, Vector256.Create(1f)));
        return Avx.Or(Avx.AndNot(sign, Avx.Divide(t, Avx.Add(t, Vector256.Create(2f)))), Avx.And(x, sign));
    }

    /// <summary>Scalar <see cref="Tanh(Vector512{float})"/> (same steps, same bits): the portable path.</summary>
    public static float Tanh(float x)
    {
        if (float.IsNaN(x)) return x;
        float y = MathF.Min(TanhCap, MathF.Abs(x)) * -2f;
        float n = MathF.Round(y * Log2E);
        float r = MathF.FusedMultiplyAdd(-n, Ln2High, y);
        r = MathF.FusedMultiplyAdd(-n, Ln2Low, r);
        float q = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(
            Expm1Q7, r, Expm1Q6), r, Expm1Q5), r, Expm1Q4), r, Expm1Q3), r, Expm1Q2);
        float p = MathF.FusedMultiplyAdd(r * r, q, r);
        float s = BitConverter.Int32BitsToSingle(((int)n + 127) << 23);
        float t = MathF.FusedMultiplyAdd(s, p, s - 1f);
        return MathF.CopySign(t / (t + 2f), x);
    }

    /// <summary>Scalar <see cref="Exp(Vector256{float})"/> (same steps, same bits for normal results).</summary>
    public static float Exp(float x)
    {
        x = MathF.Max(ExpMin, MathF.Min(ExpMax, x));
        float fx = MathF.Floor(MathF.FusedMultiplyAdd(x, Log2E, 0.5f));
        x = MathF.FusedMultiplyAdd(-fx, Ln2High, x);
        x = MathF.FusedMultiplyAdd(-fx, Ln2Low, x);
        float y = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(
            ExpP0, x, ExpP1), x, ExpP2), x, ExpP3), x, ExpP4), x, ExpP5);
        y = MathF.FusedMultiplyAdd(y, x * x, x + 1f);
        if (float.IsNaN(fx)) return fx;
        int n = (int)fx, half = n >> 1;
        return y * BitConverter.Int32BitsToSingle((half + 127) << 23) * BitConverter.Int32BitsToSingle((n - half + 127) << 23);
    }

    /// <summary>(sin 2πt, cos 2πt) per lane for t in whole turns, |t| ≤ 2^22 (absolute error below 2e-7). AVX-512F only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector512<float> Sin, Vector512<float> Cos) SinCosTurns(Vector512<float> t)
    {
        // t = q/4 + f with q the nearest quarter turn (exact: t has at most 24 significant bits) and |f| ≤ 1/8.
        var q = Vector512.Floor(Avx512F.FusedMultiplyAdd(t, Vector512.Create(4f), Vector512.Create(0.5f)));
        var f = Avx512F.FusedMultiplyAdd(q, Vector512.Create(-0.25f), t);
        var f2 = f * f;
        var s = Vector512.Create(Sin9);
        s = Avx512F.FusedMultiplyAdd(s, f2, Vector512.Create(Sin7));
        s = Avx512F.FusedMultiplyAdd(s, f2, Vector512.Create(Sin5));
        s = Avx512F.FusedMultiplyAdd(s, f2, Vector512.Create(Sin3));
        s = Avx512F.FusedMultiplyAdd(s, f2, Vector512.Create(Sin1));
        s *= f;
        var c = Vector512.Create(Cos10);
        c = Avx512F.FusedMultiplyAdd(c, f2, Vector512.Create(Cos8));
        c = Avx512F.FusedMultiplyAdd(c, f2, Vector512.Create(Cos6));
        c = Avx512F.FusedMultiplyAdd(c, f2, Vector512.Create(Cos4));
        c = Avx512F.FusedMultiplyAdd(c, f2, Vector512.Create(Cos2));
        c = Avx512F.FusedMultiplyAdd(c, f2, Vector512.Create(1f));
        // Quarter turn q: (sin, cos) of q·π/2 + x is (s, c), (c, −s), (−s, −c), (−c, s) for q mod 4 = 0, 1, 2, 3.
        var qi = Vector512.ConvertToInt32(q);
        var swap = Vector512.Equals(qi & Vector512.Create(1), Vector512.Create(1)).AsSingle();
        var sinSign = Vector512.ShiftLeft(qi & Vector512.Create(2), 30).AsSingle();
        var cosSign = Vector512.ShiftLeft((qi + Vector512.Create(1)) & Vector512.Create(2), 30).AsSingle();
        return (Vector512.ConditionalSelect(swap, c, s) ^ sinSign, Vector512.ConditionalSelect(swap, s, c) ^ cosSign);
    }

    /// <summary>Eight-lane <see cref="SinCosTurns(Vector512{float})"/> (same steps, same bits). AVX2 and FMA only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<float> Sin, Vector256<float> Cos) SinCosTurns(Vector256<float> t)
    {
        var q = Avx.RoundToNegativeInfinity(Fma.MultiplyAdd(t, Vector256.Create(4f), Vector256.Create(0.5f)));
        var f = Fma.MultiplyAdd(q, Vector256.Create(-0.25f), t);
        var f2 = Avx.Multiply(f, f);
        var s = Vector256.Create(Sin9);
        s = Fma.MultiplyAdd(s, f2, Vector256.Create(Sin7));
        s = Fma.MultiplyAdd(s, f2, Vector256.Create(Sin5));
        s = Fma.MultiplyAdd(s, f2, Vector256.Create(Sin3));
        s = Fma.MultiplyAdd(s, f2, Vector256.Create(Sin1));
        s = Avx.Multiply(s, f);
        var c = Vector256.Create(Cos10);
        c = Fma.MultiplyAdd(c, f2, Vector256.Create(Cos8));
        c = Fma.MultiplyAdd(c, f2, Vector256.Create(Cos6));
        c = Fma.MultiplyAdd(c, f2, Vector256.Create(Cos4));
        c = Fma.MultiplyAdd(c, f2, Vector256.Create(Cos2));
        c = Fma.MultiplyAdd(c, f2, Vector256.Create(1f));
        var qi = Avx.ConvertToVector256Int32(q);
        var swap = Avx2.CompareEqual(Avx2.And(qi, Vector256.Create(1)), Vector256.Create(1)).AsSingle();
        var sinSign = Avx2.ShiftLeftLogical(Avx2.And(qi, Vector256.Create(2)), 30).AsSingle();
        var cosSign = Avx2.ShiftLeftLogical(Avx2.And(Avx2.Add(qi, Vector256.Create(1)), Vector256.Create(2)), 30).AsSingle();
        return (Avx.Xor(Avx.BlendVariable(s, c, swap), sinSign), Avx.Xor(Avx.BlendVariable(c, s, swap), cosSign));
    }

    /// <summary>Scalar <see cref="SinCosTurns(Vector512{float})"/> (same steps, same bits): the portable path and the tails.</summary>
    public static (float Sin, float Cos) SinCosTurns(float t)
    {
        float q = MathF.Floor(MathF.FusedMultiplyAdd(t, 4f, 0.5f));
        float f = MathF.FusedMultiplyAdd(q, -0.25f, t);
        float f2 = f * f;
        float s = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(Sin9, f2, Sin7), f2, Sin5), f2, Sin3), f2, Sin1) * f;
        float c = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(Cos10, f2, Cos8), f2, Cos6), f2, Cos4), f2, Cos2), f2, 1f);
        int qi = (int)q;
        if ((qi & 1) != 0) (s, c) = (c, s);
        if ((qi & 2) != 0) s = -s;
        if (((qi + 1) & 2) != 0) c = -c;
        return (s, c);
    }
}
