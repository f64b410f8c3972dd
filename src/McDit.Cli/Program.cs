using McDit.Cli;

return await McDitCli.RunAsync(args, Console.Out, Console.Error);
