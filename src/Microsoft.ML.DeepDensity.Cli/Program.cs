using Microsoft.ML.DeepDensity.Cli;

// ddml: the entry point only wires the console (Ctrl+C, redirection) to DdmlApp, which the tests call in-process.
var interrupts = new Interrupts();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // keep the process alive: training stops cleanly and the tool decides what to write
    interrupts.Signal(Console.Error);
};
bool live = !Console.IsOutputRedirected && !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("DDML_PLAIN_PROGRESS") is null;
return DdmlApp.Run(args, Console.Out, Console.Error, interrupts, live);
