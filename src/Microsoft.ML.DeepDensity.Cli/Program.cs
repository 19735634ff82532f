using Microsoft.ML.DeepDensity.Cli;

// ddml: the entry point only wires the console (Ctrl+C, redirection) to DdmlApp, which the tests call in-process.
var interrupts = new Interrupts();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // keep the process alive: training stops cleanly and the tool decides what to write
    if (interrupts.CommandStopsCleanly)
    {
        interrupts.Signal(Console.Error);
        return;
    }
    // score, sample, evaluate, report, info cannot stop part-way: end now (the signal used to be swallowed, and the
    // command ran on to the end and wrote its output), leaving no temporary file behind.
    AtomicFile.DeletePending();
    Console.Error.WriteLine("ddml: interrupted; nothing was written.");
    Environment.Exit(ExitCodes.Interrupted);
};
bool live = !Console.IsOutputRedirected && !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("DDML_PLAIN_PROGRESS") is null;
// Standard output through a stream that reports a reader gone away (a pipe into head), which Console.Out ignores.
return DdmlApp.Run(args, StandardOutput.Open(), Console.Error, interrupts, live);
