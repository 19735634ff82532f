namespace Microsoft.ML.DeepDensity.Models.RnnRnade;

/// <summary>
/// Scores one sequence frame by frame as it arrives (online anomaly scoring, one-step-ahead prediction): holds the
/// recurrent state after the frames seen so far. <see cref="Append"/> returns log p(x_t | x_&lt;t) and consumes the
/// frame; <see cref="Predict"/> scores a candidate next frame without consuming it. The values equal
/// <see cref="RnnRnadeModel"/>'s batched frame log-densities of the same sequence. Not thread-safe (one per sequence).
/// A stream holds its recurrent state (the model's recurrent units, 4 bytes each) and a reference to the scratch a frame
/// is scored in, which the streams one thread scores in turn can share (the ML.NET layer's open sequences share one).
/// </summary>
public sealed class RnnRnadeStream
{
    private readonly RnnRnadeModel _model;
    private readonly RnnRnadeNetwork _net;
    private readonly Workspace _work;
    private readonly float[] _state;

    /// <summary>What scoring one frame needs besides the state (several KB: the RNADE's workspace and the recurrent
    /// biases); shared by streams of one model that one thread scores in turn, so that an open sequence costs its state
    /// alone (a service that keeps one stream per session id would otherwise hold several KB a session).</summary>
    internal sealed class Workspace(RnnRnadeNetwork net)
    {
        public readonly RnnRnadeNetwork Network = net;
        public readonly RnnRnadeNetwork.StepScratch Step = new(net);
        public readonly float[] X = new float[net.D], Pre = new float[net.R];
    }

    internal RnnRnadeStream(RnnRnadeModel model, Workspace? shared = null)
    {
        _model = model; _net = model.Network;
        _work = shared is not null && ReferenceEquals(shared.Network, _net) ? shared : new Workspace(_net);
        _state = (float[])_net.H0.Clone();
    }

    /// <summary>Frames consumed so far.</summary>
    public int Length { get; private set; }

    /// <summary>log p(<paramref name="frame"/> | frames so far) without consuming it.</summary>
    public float Predict(ReadOnlySpan<float> frame)
    {
        Standardize(frame);
        float lp = _net.StepLogDensity(_work.X, _state, _work.Step) + (float)_model.Standardizer.LogJacobian;
        // The engine's output contract, as the batched calls enforce it: a frame so far out that its density underflows
        // (∞ − ∞ in the mixture, e.g. a value of 1e30) scores −∞, never NaN.
        return float.IsNaN(lp) ? float.NegativeInfinity : lp;
    }

    /// <summary>log p(<paramref name="frame"/> | frames so far), then appends the frame to the sequence.</summary>
    public float Append(ReadOnlySpan<float> frame)
    {
        float lp = Predict(frame);
        _net.Advance(1, _work.X, _state, _work.Pre);
        Length++;
        return lp;
    }

    private void Standardize(ReadOnlySpan<float> frame)
    {
        if (frame.Length != _net.D)
            throw new Data.DataValidationException(Length, -1, FormattableString.Invariant($"the frame has {frame.Length} values but the model's frame size is {_net.D}"), null) { Kind = Data.DataProblemKind.WrongSize };
        var mean = _model.Standardizer.Mean; var scale = _model.Standardizer.Scale;
        for (int i = 0; i < frame.Length; i++)
        {
            if (!float.IsFinite(frame[i])) throw new Data.DataValidationException(Length, i, FormattableString.Invariant($"value {frame[i]} is not finite"), null) { Kind = Data.DataProblemKind.NonFiniteValue };
            _work.X[i] = Data.ColumnStandardizer.Standardize(frame[i], mean[i], scale[i]);
        }
    }
}
