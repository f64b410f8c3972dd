using Xunit;

// The classes here start heavy child processes; one at a time keeps a two-core CI machine responsive and the memory
// measurements of the children undisturbed.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
