using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.DeepDensity.Numerics;

// The RBM's weight step is computed in three places: its own pass over W and the velocity (RbmTrainer.WeightStep), and
// the epilogues of the two binary products that fuse it into the pass writing the velocity (BinaryGemm on AMX, OnesGemm
// without). They must round alike, or a fused step would not give the separate pass's bits; the expressions live here.
internal static partial class VectorMath
{
    /// <summary>v ← v + decay · w when decay ≠ 0 (product and sum rounded separately, no fused multiply-add), then
    /// returns w + v: the new weight.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float WeightStep(float w, ref float v, float decay)
    {
        if (decay != 0f) v = w * decay + v;
        return w + v;
    }

    /// <inheritdoc cref="WeightStep(float, ref float, float)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> WeightStep(Vector512<float> w, ref Vector512<float> v, float decay)
    {
        if (decay != 0f) v = w * Vector512.Create(decay) + v;
        return w + v;
    }

    /// <inheritdoc cref="WeightStep(float, ref float, float)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> WeightStep(Vector256<float> w, ref Vector256<float> v, float decay)
    {
        if (decay != 0f) v = w * Vector256.Create(decay) + v;
        return w + v;
    }
}
