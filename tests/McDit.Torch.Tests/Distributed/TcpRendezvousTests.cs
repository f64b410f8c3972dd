using System.Net;
using System.Net.Sockets;
using McDit.Torch.Distributed;
using Xunit;

namespace McDit.Torch.Tests.Distributed;

/// <summary>The TCP exchange of NCCL's unique id for torchrun-style launches (no GPU needed).</summary>
public sealed class TcpRendezvousTests
{
    static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact]
    public async Task EveryRankReceivesRankZerosPayload()
    {
        int port = FreePort();
        var payload = Enumerable.Range(0, 128).Select(i => (byte)(i * 7)).ToArray();
        var tasks = Enumerable.Range(0, 4).Reverse() // the others start first and wait for rank 0
            .Select(rank => Task.Run(() => TcpRendezvous.Exchange(rank == 0 ? payload : null,
                new WorldInfo(rank, 4, rank, "torchrun", "127.0.0.1", port), TimeSpan.FromSeconds(20))))
            .ToArray();
        var received = await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(received, r => Assert.Equal(payload, r));
    }

    [Fact]
    public void RankZeroNamesTheRanksThatDidNotJoin()
    {
        int port = FreePort();
        var e = Assert.Throws<DistributedException>(() => TcpRendezvous.Exchange(new byte[128], new WorldInfo(0, 3, 0, "torchrun", "127.0.0.1", port), TimeSpan.FromSeconds(1)));
        Assert.Contains("for ranks 1, 2 of 3", e.Message);
    }

    [Fact]
    public void ARankThatCannotReachRankZeroSaysWhere()
    {
        int port = FreePort();
        var e = Assert.Throws<DistributedException>(() => TcpRendezvous.Exchange(null, new WorldInfo(1, 2, 0, "torchrun", "127.0.0.1", port), TimeSpan.FromSeconds(1)));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
    }

    [Fact]
    public async Task RanksWithDifferentWorldSizesAreAnError()
    {
        int port = FreePort();
        var root = Task.Run(() => TcpRendezvous.Exchange(new byte[128], new WorldInfo(0, 2, 0, "torchrun", "127.0.0.1", port), TimeSpan.FromSeconds(10)));
        var other = Task.Run(() => { try { TcpRendezvous.Exchange(null, new WorldInfo(1, 3, 0, "torchrun", "127.0.0.1", port), TimeSpan.FromSeconds(3)); } catch (DistributedException) { } });
        var e = await Assert.ThrowsAsync<DistributedException>(() => root.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.Contains("WORLD_SIZE", e.Message);
        await other.WaitAsync(TimeSpan.FromSeconds(15));
    }
}
