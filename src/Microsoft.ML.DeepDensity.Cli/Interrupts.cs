namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// Ctrl+C and SIGTERM handling: the first interrupt asks training to stop at the next minibatch and keep the best model so far
/// (fit then saves it and exits with <see cref="ExitCodes.Interrupted"/>); a second one abandons the command, and
/// nothing is written.
/// </summary>
public sealed class Interrupts
{
    private readonly CancellationTokenSource _stop = new(), _abort = new();

    /// <summary>Signalled by the first interrupt: finish early, keep the result.</summary>
    public CancellationToken Stop => _stop.Token;
    /// <summary>Signalled by the second interrupt: abandon, write nothing.</summary>
    public CancellationToken Abort => _abort.Token;

    public bool StopRequested => _stop.IsCancellationRequested;

    /// <summary>
    /// True while a command honours <see cref="Stop"/> and <see cref="Abort"/> (fit). Otherwise (score, sample, evaluate,
    /// report, info) the entry point ends the process at Ctrl+C, deleting any temporary output, instead of swallowing the
    /// signal: score, evaluate, report and info have no cancellation points, and sample, which abandons its draw at
    /// <see cref="Stop"/> when run in-process, may be blocked writing to a pipe whose reader does not read.
    /// </summary>
    public bool CommandStopsCleanly { get; set; }

    /// <param name="log">Where the tool says what the signal does.</param>
    /// <param name="sigterm">
    /// The signal was SIGTERM (kill, timeout, docker stop), not Ctrl+C: whoever sent it is a process or a person at
    /// another terminal, so the message names the signal and says what sending it again does instead of telling them to
    /// press keys they have no way to press. A second signal of either kind abandons (Program.cs routes both here).
    /// </param>
    public void Signal(TextWriter? log = null, bool sigterm = false)
    {
        if (!_stop.IsCancellationRequested)
        {
            log?.WriteLine(sigterm
                ? "ddml: received SIGTERM: stopping training and keeping the best model so far (send SIGTERM again to abandon without writing)."
                : "ddml: interrupt: stopping training and keeping the best model so far (press Ctrl+C again to abandon without writing).");
            _stop.Cancel();
        }
        else
        {
            log?.WriteLine(sigterm
                ? "ddml: second signal (SIGTERM): abandoning; nothing will be written."
                : "ddml: second interrupt: abandoning; nothing will be written.");
            _abort.Cancel();
        }
    }
}
