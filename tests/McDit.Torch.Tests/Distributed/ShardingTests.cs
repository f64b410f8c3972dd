using McDit.Torch.Distributed;
using Xunit;

namespace McDit.Torch.Tests.Distributed;

/// <summary>Batch shards and the distributed sampler: disjoint, covering, the same order on every rank.</summary>
public sealed class ShardingTests
{
    [Theory]
    [InlineData(8, 2)]
    [InlineData(5, 2)]
    [InlineData(7, 3)]
    [InlineData(1, 2)]
    public void ShardsAreDisjointAndCoverTheBatch(int size, int ranks)
    {
        var shards = Enumerable.Range(0, ranks).Select(r => new BatchShard(size, r, ranks).Validated()).ToList();
        var rows = shards.SelectMany(s => s.Rows).ToList();
        Assert.Equal(Enumerable.Range(0, size), rows.Order());
        Assert.All(shards, s => Assert.Equal(s.Count, s.Rows.Count()));
        Assert.InRange(shards.Max(s => s.Count) - shards.Min(s => s.Count), 0, 1);
        foreach (var s in shards)
        {
            using var index = s.RowIndex();
            Assert.Equal(s.Rows.Select(r => (long)r), index.data<long>().ToArray());
            Assert.All(s.Rows, r => Assert.True(s.Holds(r)));
        }
    }

    [Fact]
    public void TheSamplerGivesEveryRankItsPartOfTheSameEpochs()
    {
        const long rows = 23;
        const int batch = 8, ranks = 3;
        var samplers = Enumerable.Range(0, ranks).Select(r => new DistributedBatchSampler(rows, batch, r, ranks, seed: 5)).ToList();
        Assert.Equal(3, samplers[0].BatchesPerEpoch);
        for (long epoch = 0; epoch < 2; epoch++)
        {
            var permutation = samplers[0].Permutation(epoch);
            Assert.All(samplers, s => Assert.Equal(permutation, s.Permutation(epoch)));
            var perRank = samplers.Select(s => s.Epoch(epoch).ToList()).ToList();
            var seen = perRank.SelectMany(batches => batches.SelectMany(b => b.Rows)).ToList();
            Assert.Equal(Enumerable.Range(0, (int)rows).Select(i => (long)i), seen.Order()); // disjoint and covering
            Assert.Equal(new[] { 8, 8, 7 }, perRank[0].Select(b => b.Shard.GlobalSize));    // partial last batch
            for (int b = 0; b < 3; b++)
            {
                // Rank r holds rows r, r + 3, ... of global batch b, in permutation order.
                var global = permutation.Skip(b * batch).Take(batch).ToArray();
                for (int r = 0; r < ranks; r++)
                    Assert.Equal(perRank[r][b].Shard.Rows.Select(i => global[i]), perRank[r][b].Rows);
            }
        }
        Assert.NotEqual(samplers[0].Permutation(0), samplers[0].Permutation(1));
        Assert.Equal(2, new DistributedBatchSampler(rows, batch, 0, ranks, 5, dropLast: true).BatchesPerEpoch);
    }
}
