using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// What an open sequence costs when frame rows are scored: a service that scores each event of a session, trip or device
/// through one PredictionEngine opens a stream per new id and keeps it for the id's later rows. Each stream once held its
/// own scoring scratch (about 6 KB for the default 50 recurrent units: 200,000 ids took 1.25 GB); the open streams of one
/// engine or cursor now share one, and a stream holds its recurrent state.
/// </summary>
public class FrameRowMemoryTests
{
    [Fact]
    public void ANewSequenceId_CostsItsStateNotAScratch_AndScoresAsAStreamOfItsOwn()
    {
        var ml = new MLContext(seed: 1);
        var rng = new RandomStream(3);
        var rows = new List<RnnRnadeTransformerTests.FrameRow>();
        for (int s = 0; s < 20; s++)
            for (int t = 0; t < 12; t++)
                rows.Add(new RnnRnadeTransformerTests.FrameRow { Features = new[] { (float)rng.NextGaussian(), (float)rng.NextGaussian() }, SequenceId = s, Order = t });
        var transformer = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", maxEpochs: 1).Fit(ml.Data.LoadFromEnumerable(rows));
        var model = (Models.RnnRnade.RnnRnadeModel)transformer.GetSequenceDensityModel();
        var engine = ml.Model.CreatePredictionEngine<RnnRnadeTransformerTests.FrameRow, RnnRnadeTransformerTests.FrameScore>(transformer);

        // Every id's first frame scores as a stream of its own (the shared scratch carries nothing between sequences),
        // and its second frame too, after the other ids' first frames have been scored in between.
        var frame = new RnnRnadeTransformerTests.FrameRow { Features = new[] { 0.3f, -0.2f } };
        for (int id = 0; id < 50; id++) { frame.SequenceId = 1000 + id; frame.Order = 0; engine.Predict(frame); }
        var own = model.StartStream();
        own.Append(new[] { 0.3f, -0.2f });
        float expected = own.Append(new[] { -0.1f, 0.4f });
        frame.Features = new[] { -0.1f, 0.4f };
        for (int id = 0; id < 50; id++) { frame.SequenceId = 1000 + id; frame.Order = 1; Assert.Equal(expected, engine.Predict(frame).LogDensity); }

        // 4,000 new ids: the state (50 units, 200 bytes), the id and the dictionary's entry, not a scratch each.
        frame.Order = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int id = 0; id < 4000; id++) { frame.SequenceId = 10_000 + id; engine.Predict(frame); }
        double perId = (GC.GetAllocatedBytesForCurrentThread() - before) / 4000.0;
        Assert.True(perId < 1500, $"{perId:F0} bytes allocated per new sequence id");
    }
}
