using System.Runtime.InteropServices;
using Microsoft.ML.DeepDensity.Cli;

// ddml: the entry point only wires the console (Ctrl+C, SIGTERM, redirection) to DdmlApp, which the tests call in-process.
var interrupts = new Interrupts();
void Interrupt(bool sigterm)
{
    if (interrupts.CommandStopsCleanly)
    {
        interrupts.Signal(Console.Error, sigterm);
        return;
    }
    // score, sample, evaluate, report, info cannot stop part-way: end now (the signal used to be swallowed, and the
    // command ran on to the end and wrote its output), leaving no temporary file behind.
    AtomicFile.DeletePending();
    Console.Error.WriteLine("ddml: interrupted; nothing was written.");
    Environment.Exit(ExitCodes.Interrupted);
}
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // keep the process alive: training stops cleanly and the tool decides what to write
    Interrupt(sigterm: false);
};
// SIGTERM (timeout, docker stop, kill, a CI job's cancellation) is the way tools other than a terminal stop a process:
// left to the runtime it ended ddml at once with 143, and hours of training were lost. It is handled as Ctrl+C is.
// The registration is kept for the life of the process (disposing it restores the default).
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    Interrupt(sigterm: true);
});
bool live = !Console.IsOutputRedirected && !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("DDML_PLAIN_PROGRESS") is null;
// Standard output through a stream that reports a reader gone away (a pipe into head), which Console.Out ignores.
return DdmlApp.Run(args, StandardOutput.Open(), Console.Error, interrupts, live);
