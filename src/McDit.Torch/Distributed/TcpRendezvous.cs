using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace McDit.Torch.Distributed;

/// <summary>
/// Hands a small payload (NCCL's unique id) from rank 0 to every other rank over TCP, for jobs that torchrun-style
/// launchers start without MPI: rank 0 listens on MASTER_PORT, the others connect to MASTER_ADDR:MASTER_PORT (retrying
/// until rank 0 is up), say who they are, and receive the payload. Bounded by a timeout on every side.
/// </summary>
public static class TcpRendezvous
{
    const uint Magic = 0x4D434454; // "MCDT"

    /// <summary>
    /// Rank 0 passes the payload and gets it back once every rank has received it; the others pass null and get rank
    /// 0's payload.
    /// </summary>
    /// <exception cref="DistributedException">A rank did not join, or rank 0 could not be reached, within <paramref name="timeout"/>.</exception>
    public static byte[] Exchange(byte[]? payload, WorldInfo world, TimeSpan timeout)
    {
        if (world.MasterPort is not { } port)
            throw new DistributedException($"Rank {world.Rank}: MASTER_PORT is not set; the NCCL id exchange over TCP needs MASTER_ADDR and MASTER_PORT (a free port on rank 0's machine).");
        var deadline = DateTime.UtcNow + timeout;
        return world.Rank == 0
            ? Serve(payload ?? throw new ArgumentNullException(nameof(payload), "Rank 0 provides the payload."), world, port, deadline, timeout)
            : Join(world, world.MasterAddress ?? "127.0.0.1", port, deadline, timeout);
    }

    static byte[] Serve(byte[] payload, WorldInfo world, int port, DateTime deadline, TimeSpan timeout)
    {
        var listener = new TcpListener(IPAddress.IPv6Any, port);
        listener.Server.DualMode = true;
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        try { listener.Start(world.WorldSize); }
        catch (SocketException e)
        {
            throw new DistributedException($"Rank 0 cannot listen on MASTER_PORT {port} for the NCCL id exchange: {e.Message}. Pick a free port.", e);
        }
        var joined = new HashSet<int> { 0 };
        try
        {
            while (joined.Count < world.WorldSize)
            {
                var accept = listener.AcceptTcpClientAsync();
                if (!accept.Wait(Remaining(deadline)))
                    throw new DistributedException(
                        $"Rank 0 waited {timeout.TotalSeconds:0.#} s on port {port} for ranks " +
                        $"{string.Join(", ", Enumerable.Range(0, world.WorldSize).Where(r => !joined.Contains(r)))} of {world.WorldSize}; they did not connect. " +
                        "Check that every rank was started with the same MASTER_ADDR/MASTER_PORT/WORLD_SIZE and can reach rank 0.");
                using var client = accept.Result;
                var stream = client.GetStream();
                stream.ReadTimeout = stream.WriteTimeout = (int)Math.Max(1, Remaining(deadline).TotalMilliseconds);
                var hello = ReadExactly(stream, 12);
                uint magic = BinaryPrimitives.ReadUInt32LittleEndian(hello);
                int rank = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(4)), size = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(8));
                if (magic != Magic) continue; // not one of ours: ignore the connection
                if (size != world.WorldSize)
                    throw new DistributedException($"Rank {rank} says the world has {size} processes; rank 0 has WORLD_SIZE {world.WorldSize}. Start every rank with the same WORLD_SIZE.");
                if (rank <= 0 || rank >= size || !joined.Add(rank))
                    throw new DistributedException($"Rank 0 was joined twice by rank {rank} (or by an invalid rank); every process needs its own RANK in 1..{size - 1}.");
                var header = new byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(header, payload.Length);
                stream.Write(header);
                stream.Write(payload);
                stream.Flush();
            }
            return payload;
        }
        finally
        {
            listener.Stop();
        }
    }

    static byte[] Join(WorldInfo world, string host, int port, DateTime deadline, TimeSpan timeout)
    {
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var client = new TcpClient();
                var connect = client.ConnectAsync(host, port);
                if (!connect.Wait(Remaining(deadline))) break;
                var stream = client.GetStream();
                stream.ReadTimeout = stream.WriteTimeout = (int)Math.Max(1, Remaining(deadline).TotalMilliseconds);
                var hello = new byte[12];
                BinaryPrimitives.WriteUInt32LittleEndian(hello, Magic);
                BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(4), world.Rank);
                BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(8), world.WorldSize);
                stream.Write(hello);
                int length = BinaryPrimitives.ReadInt32LittleEndian(ReadExactly(stream, 4));
                if (length < 0 || length > 1 << 20) throw new IOException($"rank 0 announced a payload of {length} bytes");
                return ReadExactly(stream, length);
            }
            catch (Exception e) when (e is SocketException or IOException or AggregateException)
            {
                last = e is AggregateException a ? a.InnerException ?? a : e;
                Thread.Sleep(100); // rank 0 may not be listening yet
            }
        }
        throw new DistributedException(
            $"Rank {world.Rank} could not get the NCCL id from rank 0 at {host}:{port} within {timeout.TotalSeconds:0.#} s" +
            (last is null ? "." : $" ({last.Message}).") + " Check MASTER_ADDR/MASTER_PORT and that rank 0 is running.");
    }

    static TimeSpan Remaining(DateTime deadline)
    {
        var left = deadline - DateTime.UtcNow;
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    static byte[] ReadExactly(Stream stream, int count)
    {
        var buffer = new byte[count];
        stream.ReadExactly(buffer);
        return buffer;
    }
}
