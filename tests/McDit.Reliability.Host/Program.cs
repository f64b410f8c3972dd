using McDit.Reliability.Host;

// mcdit-reliability-host seed DIR            writes the intact files the fuzzer mutates
// mcdit-reliability-host run CASES START     loads the cases of the file CASES (kind<TAB>path per line) from line START
// mcdit-reliability-host memory DIR          trains and generates a few hundred times, printing live tensors and RSS
TorchSharp.torch.set_num_threads(1);
MemoryGuard.Start(limitBytes: 3L << 30);
return args switch
{
    ["seed", var dir] => Seeds.Write(dir),
    ["run", var cases, var start] => CaseRunner.Run(cases, int.Parse(start, System.Globalization.CultureInfo.InvariantCulture)),
    ["memory", var dir] => MemoryCheck.Run(dir),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: mcdit-reliability-host seed DIR | run CASES START | memory DIR");
    return 2;
}
