using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity;

/// <summary>Recovering the DeepDensity sequence model (e.g. RNN-RNADE) inside a fitted or loaded ML.NET pipeline.</summary>
public static class SequenceModelExtensions
{
    /// <summary>
    /// The engine model of the one sequence density stage in <paramref name="transformer"/> (whole sequences or frame
    /// rows), live or loaded with <c>mlContext.Model.Load</c> (where it is decoded from the saved stage), for sampling
    /// or batched scoring. Throws <see cref="InvalidOperationException"/> when there is none or several, and
    /// <see cref="Persistence.InvalidModelFileException"/> when the saved model is damaged.
    /// </summary>
    /// <param name="transformer">A fitted or loaded transformer: a single stage or a chain.</param>
    /// <param name="mlContext">The context a loaded stage is decoded in; a new one when null.</param>
    public static SequenceDensityModel GetSequenceDensityModel(this ITransformer transformer, MLContext? mlContext = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return One(FindSequenceStages(transformer, mlContext), transformer, mlContext).Model;
    }

    private static (SequenceDensityModel Model, float Threshold) One(List<(SequenceDensityModel Model, float Threshold)> found, ITransformer transformer, MLContext? mlContext)
        => found.Count switch
        {
            1 => found[0],
            0 => throw new InvalidOperationException("The transformer contains no DeepDensity sequence model" +
                (transformer.GetDensityTransformers(mlContext).Count > 0 ? "; its DeepDensity model scores rows: use GetDensityModel() or GetDensityTransformers()" : "") + "."),
            _ => throw new InvalidOperationException(FormattableString.Invariant($"The transformer contains {found.Count} DeepDensity sequence models.")),
        };

    /// <summary>
    /// The anomaly threshold of the one sequence density stage in <paramref name="transformer"/> (live or loaded): its
    /// PredictedLabel is Score &gt; threshold, the threshold being the (1 − Contamination) quantile of the scores of the
    /// frames (frame rows) or sequences (whole sequences) the estimator's ThresholdRows chose at Fit: by default those the
    /// model did not train on. Throws like
    /// <see cref="GetSequenceDensityModel"/>.
    /// </summary>
    /// <param name="transformer">A fitted or loaded transformer: a single stage or a chain.</param>
    /// <param name="mlContext">The context a loaded stage is decoded in; a new one when null.</param>
    public static float GetSequenceAnomalyThreshold(this ITransformer transformer, MLContext? mlContext = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return One(FindSequenceStages(transformer, mlContext), transformer, mlContext).Threshold;
    }

    /// <summary>Every sequence model in <paramref name="transformer"/>, in pipeline order: live ones as they are, loaded
    /// ones decoded (and so validated: a damaged one throws <see cref="Persistence.InvalidModelFileException"/>).</summary>
    internal static List<SequenceDensityModel> FindSequenceModels(ITransformer transformer, MLContext? mlContext)
        => FindSequenceStages(transformer, mlContext).ConvertAll(s => s.Model);

    /// <summary>A loaded sequence surrogate chain (<paramref name="chain"/>, whose leaves are <paramref name="stages"/>) as a
    /// <see cref="SequenceDensityTransformer"/> over that same chain with the fitted transformer's input check, built from
    /// the column names its envelope carries; null when no stage yields a sequence model, or when the file (envelope
    /// version 1) has no column names to check.</summary>
    internal static SequenceDensityTransformer? CheckedSequenceStage(ITransformer chain, IReadOnlyList<ITransformer> stages, MLContext? mlContext)
    {
        var reader = new SurrogateStageReader(mlContext ?? new MLContext());
        for (int i = 0; i < stages.Count; i++)
        {
            if (reader.ReadSequenceModel(stages, i, out _) is not SequenceSurrogate.Envelope e) continue;
            var c = e.Columns;
            int frameSize = e.Model.FrameSize;
            Action<DataViewSchema>? check = c.Length switch
            {
                1 => schema => SequenceColumn.Check(schema, c[0]),   // whole sequences: the sequence column
                3 => schema => RnnRnadeFrameEstimator.CheckColumns(schema, c[0], c[1], c[2], frameSize),   // frame rows: frame, id, order
                _ => null,
            };
            return check is null ? null : new SequenceDensityTransformer(chain, e.Model, e.Threshold, check, c, streamsRows: c.Length == 3, e.StartThresholds);
        }
        return null;
    }

    /// <summary><see cref="FindSequenceModels"/> with each stage's anomaly threshold.</summary>
    private static List<(SequenceDensityModel Model, float Threshold)> FindSequenceStages(ITransformer transformer, MLContext? mlContext)
    {
        var found = new List<(SequenceDensityModel, float)>();
        SurrogateStageReader? reader = null;
        Visit(transformer);
        return found;

        void Visit(ITransformer t)
        {
            switch (t)
            {
                case SequenceDensityTransformer s:
                    found.Add((s.Model, s.Threshold));
                    return;
                case IEnumerable<ITransformer> chain:
                    // By index: a loaded model's chunks are held by consecutive stages (one MapValue each).
                    var stages = chain.ToList();
                    for (int i = 0; i < stages.Count; i++)
                    {
                        if (stages[i] is SequenceDensityTransformer or IEnumerable<ITransformer>) { Visit(stages[i]); continue; }
                        if (Reader().ReadSequenceModel(stages, i, out int used) is SequenceSurrogate.Envelope inChain)
                        {
                            found.Add((inChain.Model, inChain.Threshold));
                            i += used - 1;
                        }
                    }
                    return;
            }
            // A loaded stage: the MapValue stages of the surrogate chain turn the constant key into the model text (as for row models).
            if (Reader().ReadSequenceModel(new[] { t }, 0, out _) is SequenceSurrogate.Envelope e) found.Add((e.Model, e.Threshold));
        }

        SurrogateStageReader Reader()
        {
            mlContext ??= new MLContext();
            return reader ??= new SurrogateStageReader(mlContext);
        }
    }
}
