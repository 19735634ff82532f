using Microsoft.ML.DeepDensity.Data;
using static Microsoft.ML.DeepDensity.Tests.Conformance.DistributionStatistics;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// <see cref="DistributionChecks"/> for sequence models: the first frame's density, two frames' joint density and a
/// second frame's conditional given a fixed first frame each integrate to one, and the sampler draws from them (fresh
/// sequences of one and two frames, and continuations of the fixed prefix). Integrals
/// and the density's moments come from importance sampling with a Gaussian twice as wide as the model's draws
/// (400,000 proposals); the draws' means, standard deviations and correlations must be within 0.05 of a standard deviation, 5 % and 0.05.
/// </summary>
public class SequenceDistributionChecks
{
    private const int Draws = 20_000;

    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void EachFramesDensityIntegratesToOneAndTheSamplerDrawsFromIt(string name)
    {
        var c = SequenceModelCases.Get(name);
        var data = c.MakeData(c.TrainingSequences, 12345);
        // Trained for 100 epochs, not the suite's usual 3: a model that has learned the data's dependence between
        // frames and within a frame (AR(1) at 0.8, a correlated copy) is one whose sampler can get them wrong.
        var model = c.Fit(new SequenceFitRequest(data, 1) { Epochs = 100 });
        int d = data.FrameSize;
        var firstDraws = model.Sample(Draws, length: 1, seed: 31).Values.AsSpan(0, Draws * d).ToArray();
        var (proposal, logq) = Proposal(firstDraws, d, seed: 2024);
        var first = model.LogDensity(new SequenceBatch(proposal, Enumerable.Range(0, Proposals + 1).ToArray(), d));
        IntegratesToOneAndMatches($"{name}: the first frame", first, logq, proposal, firstDraws, d);

        // Two fresh frames together (the sampler's own recurrence): their joint density over 2 × d values.
        var pairDraws = model.Sample(Draws, length: 2, seed: 33).Values.AsSpan(0, Draws * 2 * d).ToArray();
        var (jointProposal, jointLogq) = Proposal(pairDraws, 2 * d, seed: 2026);
        var joint = model.LogDensity(new SequenceBatch(jointProposal, Enumerable.Range(0, Proposals + 1).Select(i => 2 * i).ToArray(), d));
        IntegratesToOneAndMatches($"{name}: two frames together", joint, jointLogq, jointProposal, pairDraws, 2 * d);

        // Frame 2 given the first training frame: continuations of it, and two-frame sequences' second conditional.
        var prefix = data.Values.AsSpan(0, d).ToArray();
        var prefixes = new float[Draws * d];
        for (int i = 0; i < Draws; i++) prefix.CopyTo(prefixes, i * d);
        var continued = model.Sample(new SequenceBatch(prefixes, Enumerable.Range(0, Draws + 1).ToArray(), d), extraFrames: 1, seed: 37);
        Assert.Equal(2 * Draws, continued.TotalFrames);
        var secondDraws = new float[Draws * d];
        for (int i = 0; i < Draws; i++) Array.Copy(continued.Values, (continued.Offsets[i] + 1) * d, secondDraws, i * d, d);
        (proposal, logq) = Proposal(secondDraws, d, seed: 2025);
        var pairs = new float[Proposals * 2 * d];
        for (int i = 0; i < Proposals; i++)
        {
            prefix.CopyTo(pairs, i * 2 * d);
            Array.Copy(proposal, i * d, pairs, i * 2 * d + d, d);
        }
        var frames = new float[Proposals * 2];
        model.FrameLogDensity(new SequenceBatch(pairs, Enumerable.Range(0, Proposals + 1).Select(i => 2 * i).ToArray(), d), frames);
        var second = new float[Proposals];
        for (int i = 0; i < Proposals; i++) second[i] = frames[2 * i + 1];
        IntegratesToOneAndMatches($"{name}: the second frame given the first", second, logq, proposal, secondDraws, d);
    }
}
