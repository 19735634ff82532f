namespace Microsoft.ML.DeepDensity.Models.RnnRnade;

// Stand-in for Data.SequenceBatch (CONTRACTS.md) until the restructuring lands; deleted then.
internal sealed class SequenceBatch
{
    public SequenceBatch(float[] values, int[] offsets, int frameSize)
    {
        Values = values; Offsets = offsets; FrameSize = frameSize;
        for (int i = 0; i + 1 < offsets.Length; i++)
            if (offsets[i + 1] <= offsets[i]) throw new ArgumentException($"Sequence {i} is empty or offsets are not increasing.");
    }
    public float[] Values { get; }
    public int[] Offsets { get; }
    public int FrameSize { get; }
    public int Count => Offsets.Length - 1;
    public int TotalFrames => Offsets[^1];
    public int Length(int i) => Offsets[i + 1] - Offsets[i];
    public ReadOnlySpan<float> Sequence(int i) => Values.AsSpan(Offsets[i] * FrameSize, Length(i) * FrameSize);
}
