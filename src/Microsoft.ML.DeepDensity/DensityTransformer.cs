using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// A fitted density model as an ML.NET transformer: appends LogDensity, Score (= −LogDensity, finite) and PredictedLabel
/// (Score &gt; <see cref="Threshold"/>), optionally a standard-error and a sample column. Transform is lazy; its cursor reads
/// <see cref="ScoringBlockRows"/> rows ahead and scores them with one batched engine call. Saved with
/// <c>mlContext.Model.Save</c> as a chain of loadable built-ins; load it back for scoring with
/// <see cref="DensityModelExtensions.LoadWithLiveDensityModels(ModelOperationsCatalog, string, out DataViewSchema)"/>
/// (this transformer again, model validated at load) rather than the plain <c>mlContext.Model.Load</c> (same values, one
/// row per engine call); <see cref="DensityModelExtensions.GetDensityModel"/> recovers the model from either.
/// </summary>
public class DensityTransformer : ITransformer
{
    private readonly MLContext? _mlContext;

    internal DensityTransformer(MLContext? mlContext, DensityModel model, TransformerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(model);
        _mlContext = mlContext;
        Model = model;
        Settings = settings;
    }

    /// <summary>The engine model (cast to its family, e.g. <c>RnadeModel</c>, for parameters).</summary>
    public DensityModel Model { get; }

    internal TransformerSettings Settings { get; }

    /// <summary>Input column name.</summary>
    public string FeatureColumnName => Settings.FeatureColumnName;
    /// <summary>Output column names: log-density, score, predicted label.</summary>
    public string LogDensityColumnName => Settings.LogDensityColumnName;
    /// <inheritdoc cref="LogDensityColumnName"/>
    public string ScoreColumnName => Settings.ScoreColumnName;
    /// <inheritdoc cref="LogDensityColumnName"/>
    public string PredictedLabelColumnName => Settings.PredictedLabelColumnName;
    /// <summary>Optional standard-error column name (null if not produced).</summary>
    public string? StandardErrorColumnName => Settings.StandardErrorColumnName;
    /// <summary>Optional sample column name (null if not produced).</summary>
    public string? SampleColumnName => Settings.SampleColumnName;
    /// <summary>Seed of the sample column.</summary>
    public ulong SampleSeed => Settings.SampleSeed;
    /// <summary>Score threshold for PredictedLabel, learned at Fit (on the rows <see cref="DensityEstimatorOptions.ThresholdRows"/> chose).</summary>
    public float Threshold => Settings.Threshold;
    /// <summary>Which rows set <see cref="Threshold"/> in Fit, and how, as its log says ("90 held-out rows"); null once loaded.</summary>
    internal string? ThresholdSource { get; init; }
    /// <summary>Fit's warning that the training rows set the threshold (for ddml); empty once loaded.</summary>
    internal IReadOnlyList<AnomalyThreshold.ThresholdFallback> ThresholdFallbacks { get; init; } = [];
    /// <summary>The contamination the threshold was learned with.</summary>
    public double Contamination => Settings.Contamination;
    /// <summary>Rows read ahead and scored per engine call.</summary>
    public int ScoringBlockRows => Settings.ScoringBlockRows;

    /// <summary>Always true.</summary>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => new Binding(this, inputSchema).OutputSchema;

    /// <summary>Lazily appends the output columns (nothing is read or scored until a cursor moves).</summary>
    /// <param name="input">The data view with the feature column (a known-size Single vector of the model's dimension).</param>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new DensityDataView(new Binding(this, input.Schema), input);
    }

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new Mapper(new Binding(this, inputSchema));

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        // ModelSaveContext's members are internal: hand the context to a loadable surrogate chain instead.
        ((ICanSaveModel)Surrogate.Build(_mlContext ?? new MLContext(), this)).Save(ctx);
    }

    /// <summary>
    /// The rows of the draw <c>Model.Sample(<paramref name="count"/>, <paramref name="seed"/>)</c>, bit for bit, as a lazy
    /// data view with one column named like the feature column (a known-size Single vector); the same seed gives the same
    /// rows. Nothing is drawn until a cursor asks for a value: a cursor draws the rows in blocks of up to 1,024 (fewer for
    /// wide rows, so a block holds about 2^22 values), so its memory is one block whatever <paramref name="count"/> is —
    /// any count up to <see cref="int.MaxValue"/>, not only what one array holds. The row count is known; the view does not
    /// shuffle (append <c>mlContext.Data.ShuffleRows</c> for that).
    /// </summary>
    /// <param name="mlContext">The context the data view is used in.</param>
    /// <param name="count">Rows to draw (non-negative).</param>
    /// <param name="seed">Seed of the draws.</param>
    public IDataView GenerateSamples(MLContext mlContext, int count, ulong seed)
        => GenerateSamples(mlContext, count, seed, CancellationToken.None);

    /// <summary>
    /// <see cref="GenerateSamples(MLContext, int, ulong)"/> whose cursors observe <paramref name="cancellationToken"/>
    /// (ML.NET 5 has no public cancellation on <c>MLContext</c>): once it is cancelled, a cursor throws
    /// <see cref="OperationCanceledException"/> from <c>MoveNext</c> at the next block's first row, or from a getter while
    /// the engine draws a block (it checks the token every sampling block, an RBM every Gibbs sweep).
    /// </summary>
    /// <param name="mlContext">The context the data view is used in.</param>
    /// <param name="count">Rows to draw (non-negative).</param>
    /// <param name="seed">Seed of the draws.</param>
    /// <param name="cancellationToken">Stops the cursors of the view.</param>
    public IDataView GenerateSamples(MLContext mlContext, int count, ulong seed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentOutOfRangeException.ThrowIfNegative(count); // named here: the engine's check names its own parameter
        return new GeneratedSamplesView(Model, FeatureColumnName, count, seed, cancellationToken);
    }

    // ------------------------------------------------------------------------------------------
    /// <summary>Input schema → output schema, and which input columns each output needs.</summary>
    internal sealed class Binding
    {
        public Binding(DensityTransformer parent, DataViewSchema inputSchema)
        {
            ArgumentNullException.ThrowIfNull(inputSchema);
            Parent = parent;
            InputSchema = inputSchema;
            var s = parent.Settings;
            FeatureColumn = FeatureColumnCheck.Check(inputSchema, s.FeatureColumnName, parent.Model.Dimension);
            ReservedColumns.Check(inputSchema, new[] { s.FeatureColumnName });
            // The output columns where ML.NET's own transforms put them (its ColumnBindings): after the input columns, or,
            // for a name the input already has, right after the last input column of that name (which is hidden). The saved
            // chain adds them with CopyColumns, which does the same, so a plain Model.Load gives this schema column for
            // column; appending every output at the end, as before, put an output named like an input column (the feature
            // column, Label) elsewhere in the loaded schema than in the live one.
            var added = new List<(string Name, DataViewType Type)>
            {
                (s.LogDensityColumnName, NumberDataViewType.Single),
                (s.ScoreColumnName, NumberDataViewType.Single),
                (s.PredictedLabelColumnName, BooleanDataViewType.Instance),
            };
            if (s.StandardErrorColumnName is not null) added.Add((s.StandardErrorColumnName, NumberDataViewType.Single));
            if (s.SampleColumnName is not null) added.Add((s.SampleColumnName, new VectorDataViewType(NumberDataViewType.Single, parent.Model.Dimension)));
            var order = OutputOrder(inputSchema, added.ConvertAll(a => a.Name));
            var b = new DataViewSchema.Builder();
            var inputIndex = new int[order.Count];
            var outputIndex = new int[added.Count];
            for (int i = 0; i < order.Count; i++)
            {
                int k = order[i];
                inputIndex[i] = k >= 0 ? k : -1;
                if (k >= 0) b.AddColumn(inputSchema[k].Name, inputSchema[k].Type, inputSchema[k].Annotations);
                else { outputIndex[~k] = i; b.AddColumn(added[~k].Name, added[~k].Type); }
            }
            _inputIndex = inputIndex;
            LogIndex = outputIndex[0];
            ScoreIndex = outputIndex[1];
            PredictedIndex = outputIndex[2];
            StdErrIndex = s.StandardErrorColumnName is not null ? outputIndex[3] : -1;
            SampleIndex = s.SampleColumnName is not null ? outputIndex[^1] : -1;
            OutputSchema = b.ToSchema();
        }

        private readonly int[] _inputIndex;

        /// <summary>ML.NET's ColumnBindings order: the input columns' indices k ≥ 0 and the added columns' ~i, each added
        /// column appended, or inserted after the last column of its name when the name is taken.</summary>
        internal static List<int> OutputOrder(DataViewSchema input, IReadOnlyList<string> added)
        {
            var order = new List<int>(input.Count + added.Count);
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (int k = 0; k < input.Count; k++) { order.Add(k); names.Add(input[k].Name); }
            for (int i = 0; i < added.Count; i++)
            {
                if (names.Add(added[i])) { order.Add(~i); continue; }
                for (int j = order.Count - 1; j >= 0; j--)
                    if ((order[j] >= 0 ? input[order[j]].Name : added[~order[j]]) == added[i]) { order.Insert(j + 1, ~i); break; }
            }
            return order;
        }

        /// <summary>The input column an output column passes through, or −1 for the transformer's own columns.</summary>
        public int InputIndex(int outputIndex) => _inputIndex[outputIndex];

        public DensityTransformer Parent { get; }
        public DataViewSchema InputSchema { get; }
        public DataViewSchema OutputSchema { get; }
        public DataViewSchema.Column FeatureColumn { get; }
        public int LogIndex { get; }
        public int ScoreIndex { get; }
        public int PredictedIndex { get; }
        public int StdErrIndex { get; }
        public int SampleIndex { get; }

        public bool NeedsScores(bool[] active)
            => active[LogIndex] || active[ScoreIndex] || active[PredictedIndex] || (StdErrIndex >= 0 && active[StdErrIndex]);

        public bool NeedsSample(bool[] active) => SampleIndex >= 0 && active[SampleIndex];

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> outputColumns)
        {
            var set = new SortedSet<int>();
            foreach (var c in outputColumns)
                set.Add(InputIndex(c.Index) is int k and >= 0 ? k : FeatureColumn.Index);
            var result = new List<DataViewSchema.Column>(set.Count);
            foreach (var i in set) result.Add(InputSchema[i]);
            return result;
        }

        public bool[] Active(IEnumerable<DataViewSchema.Column> outputColumns)
        {
            var active = new bool[OutputSchema.Count];
            foreach (var c in outputColumns)
            {
                if (c.Index < 0 || c.Index >= active.Length || OutputSchema[c.Index].Name != c.Name)
                    throw new ArgumentOutOfRangeException(nameof(outputColumns), $"Column '{c.Name}' does not belong to this transformer's output schema.");
                active[c.Index] = true;
            }
            return active;
        }

        public void CheckGetter<TValue>(DataViewSchema.Column column, bool[] active)
        {
            if (column.Index < 0 || column.Index >= OutputSchema.Count || OutputSchema[column.Index].Name != column.Name)
                throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' does not belong to this row's schema.");
            if (!active[column.Index])
                throw new InvalidOperationException($"Column '{column.Name}' is not active.");
            var raw = OutputSchema[column.Index].Type.RawType;
            if (typeof(TValue) != raw)
                throw new InvalidOperationException($"Invalid TValue '{typeof(TValue).Name}' for column '{column.Name}', expected '{raw.Name}'.");
        }
    }

    // ---------------------------------- live data view and block cursor ----------------------------------
    private sealed class DensityDataView : IDataView
    {
        private readonly Binding _b;
        private readonly IDataView _input;
        public DensityDataView(Binding b, IDataView input) { _b = b; _input = input; }

        public bool CanShuffle => _input.CanShuffle;
        public DataViewSchema Schema => _b.OutputSchema;
        public long? GetRowCount() => _input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var cols = columnsNeeded.ToArray();
            var active = _b.Active(cols);
            return Wrap(_input.GetRowCursor(_b.GetDependencies(cols), rand), active, _input.GetRowCount());
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        {
            var cols = columnsNeeded.ToArray();
            var active = _b.Active(cols);
            var inputs = _input.GetRowCursorSet(_b.GetDependencies(cols), n, rand);
            var result = new DataViewRowCursor[inputs.Length];
            for (int i = 0; i < inputs.Length; i++) result[i] = Wrap(inputs[i], active, cursors: inputs.Length);
            return result;
        }

        // A read of pass-through columns only (a normalizer or trainer appended after us, GetColumn("Label")...) neither
        // scores nor reads ahead: the input cursor is served as it is.
        private DataViewRowCursor Wrap(DataViewRowCursor input, bool[] active, long? inputRows = null, int cursors = 1)
            => _b.NeedsScores(active) || _b.NeedsSample(active) ? new BlockCursor(_b, input, active, inputRows, cursors) : new PassThroughCursor(_b, input, active);
    }

    /// <summary>The cursor of a read that asks for none of the transformer's own columns: the input's rows and getters.</summary>
    private sealed class PassThroughCursor : DataViewRowCursor
    {
        private readonly Binding _b;
        private readonly DataViewRowCursor _input;
        private readonly bool[] _active;
        public PassThroughCursor(Binding b, DataViewRowCursor input, bool[] active) { _b = b; _input = input; _active = active; }

        public override DataViewSchema Schema => _b.OutputSchema;
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override bool MoveNext() => _input.MoveNext();
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            _b.CheckGetter<TValue>(column, _active);
            return _input.GetGetter<TValue>(_b.InputSchema[_b.InputIndex(column.Index)]); // active ⇒ a pass-through column here
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _input.Dispose();
            base.Dispose(disposing);
        }
    }

    /// <summary>
    /// Reads up to <see cref="ScoringBlockRows"/> input rows ahead (copying the features and every active pass-through
    /// column), scores them with one batched engine call, then serves them one by one.
    /// </summary>
    private sealed class BlockCursor : DataViewRowCursor, ColumnCache.ISlot
    {
        /// <summary>Values a block holds at most (features, samples, known-size vector pass-through columns): 2^24 (64 MiB),
        /// all of <see cref="ScoringBlockRows"/> up to 8,192 values per row.</summary>
        internal const int MaxBlockValues = 1 << 24;

        private readonly Binding _b;
        private readonly DataViewRowCursor _input;
        private readonly bool[] _active;
        private readonly DensityModel _model;
        private readonly int _dim, _capacity, _cursors;
        private readonly bool _needScores, _needStdErr, _needSample;
        private readonly ValueGetter<VBuffer<float>>? _features;
        private readonly ValueGetter<DataViewRowId> _inputId;
        private readonly ColumnCache?[] _caches;
        private readonly float[] _block, _logDensity, _stdErr;
        private readonly float[]? _samples;
        private readonly long[] _positions, _batches;
        private readonly DataViewRowId[] _ids;
        private VBuffer<float> _featureBuffer;
        private int _filled, _index = -1;
        private long _position = -1, _batch;
        private bool _done;

        public BlockCursor(Binding b, DataViewRowCursor input, bool[] active, long? inputRows = null, int cursors = 1)
        {
            _b = b; _input = input; _active = active; _cursors = cursors;
            _model = b.Parent.Model;
            _dim = _model.Dimension;
            _needScores = b.NeedsScores(active);
            _needStdErr = b.StdErrIndex >= 0 && active[b.StdErrIndex];
            _needSample = b.NeedsSample(active);
            bool needFeatures = _needScores || _needSample;
            // Buffers for the rows there are, not for the setting: a block of 50 rows costs 50 rows. And for wide rows at most
            // MaxBlockValues values held per block (features, samples, known-size vector pass-through columns): 2,048 rows
            // of 100,000 features took 820 MB per cursor, at 1,100,000 the size overflowed (OverflowException), and a
            // 150,000-value image passing through beside 4 features held 1.2 GB. A row's scores do not depend on its block.
            long rowValues = (needFeatures ? _dim : 0) + (_needSample ? _dim : 0);
            for (int i = 0; i < active.Length; i++)
                if (active[i] && b.InputIndex(i) is int k and >= 0 && b.InputSchema[k].Type is VectorDataViewType { Size: > 0 } passed) rowValues += passed.Size;
            int rows = inputRows is long known && known < b.Parent.ScoringBlockRows ? (int)Math.Max(1, known) : b.Parent.ScoringBlockRows;
            _capacity = (int)Math.Min(rows, Math.Max(1, MaxBlockValues / Math.Max(1, rowValues)));
            _features = needFeatures ? input.GetGetter<VBuffer<float>>(b.FeatureColumn) : null;
            _block = needFeatures ? new float[_capacity * _dim] : Array.Empty<float>();
            _logDensity = _needScores ? new float[_capacity] : Array.Empty<float>();
            _stdErr = _needStdErr ? new float[_capacity] : Array.Empty<float>();
            _samples = _needSample ? new float[_capacity * _dim] : null;
            _positions = new long[_capacity];
            _batches = new long[_capacity];
            _ids = new DataViewRowId[_capacity];
            _inputId = input.GetIdGetter();
            _caches = new ColumnCache?[b.InputSchema.Count];
            for (int i = 0; i < active.Length; i++)
                if (active[i] && b.InputIndex(i) is int k and >= 0) _caches[k] = ColumnCache.Create(input, b.InputSchema[k], _capacity);
        }

        public int Slot => _index;
        public override DataViewSchema Schema => _b.OutputSchema;
        public override long Position => _position;
        public override long Batch => _batch;
        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId id) =>
            {
                if (_index < 0) throw new InvalidOperationException("The cursor has no current row.");
                id = _ids[_index];
            };

        public override bool MoveNext()
        {
            if (_done) return false;
            if (_index + 1 < _filled) { _index++; SetCurrent(); return true; }
            Fill();
            if (_filled == 0) { _done = true; _index = -1; _position = -1; return false; }
            _index = 0;
            SetCurrent();
            return true;
        }

        private void SetCurrent() { _position = _positions[_index]; _batch = _batches[_index]; }

        /// <summary>
        /// A problem with block row <paramref name="slot"/>, at the user's row: the input cursor's position, which is the
        /// row's index in the data view for a cursor over it (not the count of rows this cursor read, nor the block's
        /// index). One of several parallel cursors (GetRowCursorSet) counts only its own rows, so its position is no
        /// row number: the message says the row number is unknown rather than give a wrong one. ML.NET asks for such
        /// cursors itself when a row-to-row transform follows this one (its consolidating cursor), even for GetColumn on
        /// the whole pipeline, so the message says how to get one cursor over this stage. Replaces <paramref name="e"/>, whose row is the block's.
        /// </summary>
        private DataValidationException RowError(int slot, DataValidationException e)
            => _cursors > 1
                ? NonFiniteInput.WithHint(e.Restated(-1, e.Column, e.Problem + FormattableString.Invariant($" (row number unknown: the row was read by one of {_cursors} parallel cursors, ") +
                    "whose positions count their own rows. ML.NET reads a pipeline on parallel cursors when a transform after this stage " +
                    "or a cache asks for it, and then wraps this exception in its \"Splitter/consolidator worker\" InvalidOperationException; " +
                    "reading this stage's output with one cursor, e.g. GetColumn on the pipeline up to this stage, names the row)", _b.FeatureColumn.Name, chain: false), _b.FeatureColumn)
                : NonFiniteInput.WithHint(e.Restated(_positions[slot], e.Column, e.Problem, _b.FeatureColumn.Name, chain: false), _b.FeatureColumn);

        private void Fill()
        {
            int n = 0;
            while (n < _capacity && _input.MoveNext())
            {
                _positions[n] = _input.Position;
                _batches[n] = _input.Batch;
                _inputId(ref _ids[n]);
                if (_features is not null)
                {
                    _features(ref _featureBuffer);
                    if (_featureBuffer.Length != _dim)
                        throw RowError(n, new DataValidationException(-1, -1, FormattableString.Invariant($"the vector has {_featureBuffer.Length} values but the model expects {_dim}"), null) { Kind = DataProblemKind.WrongSize });
                    Scoring.Densify(in _featureBuffer, _block.AsSpan(n * _dim, _dim));
                }
                foreach (var c in _caches) c?.Capture(n);
                n++;
            }
            _filled = n;
            if (n == 0 || _features is null) return; // nothing of ours to compute (PassThroughCursor serves such reads)
            var rows = _block.AsSpan(0, n * _dim);
            try
            {
                if (_needScores)
                    _model.LogDensity(rows, _logDensity.AsSpan(0, n), _needStdErr ? _stdErr.AsSpan(0, n) : default);
                else if (_needSample)
                    DataValidation.CheckRows(rows, _dim, _model.InputDomain, _b.FeatureColumn.Name);
            }
            catch (DataValidationException e)
            {
                // The engine numbers the rows of its block, not the user's.
                if (e.Row >= 0 && e.Row < n) throw RowError((int)e.Row, e);
                throw NonFiniteInput.WithHint(e.Restated(-1, e.Column, e.Problem, _b.FeatureColumn.Name, chain: false), _b.FeatureColumn);
            }
            if (_needSample)
            {
                var seed = _b.Parent.SampleSeed;
                for (int r = 0; r < n; r++)
                {
                    var row = rows.Slice(r * _dim, _dim);
                    _model.Sample(1, Scoring.RowSampleSeed(seed, row), _samples.AsSpan(r * _dim, _dim));
                }
            }
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            _b.CheckGetter<TValue>(column, _active);
            if (_b.InputIndex(column.Index) is int k and >= 0)
                return (ValueGetter<TValue>)_caches[k]!.MakeGetter(this);
            Delegate g;
            float threshold = _b.Parent.Threshold;
            if (column.Index == _b.LogIndex) g = (ValueGetter<float>)((ref float v) => v = _logDensity[Current()]);
            else if (column.Index == _b.ScoreIndex) g = (ValueGetter<float>)((ref float v) => v = Scoring.ScoreFromLogDensity(_logDensity[Current()]));
            else if (column.Index == _b.PredictedIndex) g = (ValueGetter<bool>)((ref bool v) => v = Scoring.ScoreFromLogDensity(_logDensity[Current()]) > threshold);
            else if (column.Index == _b.StdErrIndex) g = (ValueGetter<float>)((ref float v) => v = _stdErr[Current()]);
            else
            {
                g = (ValueGetter<VBuffer<float>>)((ref VBuffer<float> v) =>
                {
                    int i = Current();
                    var editor = VBufferEditor.Create(ref v, _dim);
                    _samples.AsSpan(i * _dim, _dim).CopyTo(editor.Values);
                    v = editor.Commit();
                });
            }
            return (ValueGetter<TValue>)g;
        }

        private int Current() => _index >= 0 ? _index : throw new InvalidOperationException("The cursor has no current row.");

        protected override void Dispose(bool disposing)
        {
            if (disposing) _input.Dispose();
            base.Dispose(disposing);
        }
    }

    // ---------------------------------- row-to-row mapper (PredictionEngine) ----------------------------------
    private sealed class Mapper : IRowToRowMapper
    {
        private readonly Binding _b;
        public Mapper(Binding b) => _b = b;
        public DataViewSchema InputSchema => _b.InputSchema;
        public DataViewSchema OutputSchema => _b.OutputSchema;
        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
            => _b.GetDependencies(dependingColumns);

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            ArgumentNullException.ThrowIfNull(input);
            return new MappedRow(_b, input, _b.Active(activeColumns));
        }
    }

    /// <summary>One row at a time (used by PredictionEngine); results are cached per input position.</summary>
    private sealed class MappedRow : DataViewRow
    {
        private readonly Binding _b;
        private readonly DataViewRow _input;
        private readonly bool[] _active;
        private readonly ValueGetter<VBuffer<float>>? _features;
        private readonly float[] _row, _sample;
        private readonly float[] _ldse = new float[2];
        private VBuffer<float> _buffer;
        private long _scoredPosition = long.MinValue, _sampledPosition = long.MinValue;

        public MappedRow(Binding b, DataViewRow input, bool[] active)
        {
            _b = b; _input = input; _active = active;
            int d = b.Parent.Model.Dimension;
            _row = new float[d];
            _sample = new float[d];
            if (b.NeedsScores(active) || b.NeedsSample(active)) _features = input.GetGetter<VBuffer<float>>(b.FeatureColumn);
        }

        public override DataViewSchema Schema => _b.OutputSchema;
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        private void ReadFeatures()
        {
            _features!(ref _buffer);
            if (_buffer.Length != _row.Length)
                throw RowError(new DataValidationException(-1, -1, FormattableString.Invariant($"the vector has {_buffer.Length} values but the model expects {_row.Length}"), null) { Kind = DataProblemKind.WrongSize });
            Scoring.Densify(in _buffer, _row);
        }

        /// <summary>
        /// A problem with the one row being mapped, said truthfully: a cursor's row is at its position in the data view; the
        /// input row of a PredictionEngine (or of another mapper in its chain) has no row number in any data view, and its
        /// Position counts the engine's predictions, so the message names it as the example of the Nth prediction instead
        /// (<see cref="DataValidationException.Row"/> −1). Replaces <paramref name="e"/>, whose row is the one-row call's 0.
        /// </summary>
        private DataValidationException RowError(DataValidationException e)
        {
            long pos = _input.Position;
            if (_input is DataViewRowCursor && pos >= 0) return NonFiniteInput.WithHint(e.Restated(pos, e.Column, e.Problem, _b.FeatureColumn.Name, chain: false), _b.FeatureColumn);
            string which = pos >= 0 ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $": the input of its prediction number {pos + 1}, counting from 1") : "";
            return NonFiniteInput.WithHint(e.Restated(-1, e.Column, e.Problem + $" (in the input row of a PredictionEngine or row mapper{which}; not a row number of any data view)",
                _b.FeatureColumn.Name, chain: false), _b.FeatureColumn);
        }

        private float[] Scores()
        {
            long pos = _input.Position;
            if (pos != _scoredPosition)
            {
                ReadFeatures();
                try { _b.Parent.Model.LogDensity(_row, _ldse.AsSpan(0, 1), _ldse.AsSpan(1, 1)); }
                catch (DataValidationException e) { throw RowError(e); }
                _scoredPosition = pos;
            }
            return _ldse;
        }

        private float[] Sample()
        {
            long pos = _input.Position;
            if (pos != _sampledPosition)
            {
                ReadFeatures();
                try { DataValidation.CheckRows(_row, _row.Length, _b.Parent.Model.InputDomain, _b.FeatureColumn.Name); }
                catch (DataValidationException e) { throw RowError(e); }
                _b.Parent.Model.Sample(1, Scoring.RowSampleSeed(_b.Parent.SampleSeed, _row), _sample);
                _sampledPosition = pos;
            }
            return _sample;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            _b.CheckGetter<TValue>(column, _active);
            if (_b.InputIndex(column.Index) is int k and >= 0) return _input.GetGetter<TValue>(_b.InputSchema[k]);
            float threshold = _b.Parent.Threshold;
            Delegate g;
            if (column.Index == _b.LogIndex) g = (ValueGetter<float>)((ref float v) => v = Scores()[0]);
            else if (column.Index == _b.ScoreIndex) g = (ValueGetter<float>)((ref float v) => v = Scoring.ScoreFromLogDensity(Scores()[0]));
            else if (column.Index == _b.PredictedIndex) g = (ValueGetter<bool>)((ref bool v) => v = Scoring.ScoreFromLogDensity(Scores()[0]) > threshold);
            else if (column.Index == _b.StdErrIndex) g = (ValueGetter<float>)((ref float v) => v = Scores()[1]);
            else
            {
                g = (ValueGetter<VBuffer<float>>)((ref VBuffer<float> v) =>
                {
                    var s = Sample();
                    var editor = VBufferEditor.Create(ref v, s.Length);
                    s.CopyTo(editor.Values);
                    v = editor.Commit();
                });
            }
            return (ValueGetter<TValue>)g;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _input.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>A fitted density transformer whose model has the static type <typeparamref name="TModel"/>.</summary>
public sealed class DensityTransformer<TModel> : DensityTransformer where TModel : DensityModel
{
    internal DensityTransformer(MLContext? mlContext, TModel model, TransformerSettings settings) : base(mlContext, model, settings) { }

    /// <summary>The engine model.</summary>
    public new TModel Model => (TModel)base.Model;
}
