using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics.Amx;

/// <summary>
/// The AMX tile unit (Intel Sapphire Rapids and later): whether this process can use it, and the mapped micro-kernel.
/// </summary>
/// <remarks>
/// <para>.NET has no AMX intrinsics, so the micro-kernel is machine code compiled from <c>amx_kernels.c</c>
/// (<see cref="AmxCode"/>), copied into a page mapped read-write, then switched to read-execute (never both), and called
/// through an unmanaged function pointer. Linux gives a process the tiles' 8 KB of register state only on request
/// (<c>arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)</c>, kernel 5.16+), which this class makes once.</para>
/// <para>Available only when all of these hold: Linux on x86-64; CPUID reports AMX-TILE and AMX-INT8; the kernel grants
/// the permission; the code maps; and a self-test product equals the exact integer reference bit for bit. Anything
/// else leaves <see cref="IsAvailable"/> false with the reason in <see cref="Status"/>, and callers use the SIMD GEMM.
/// The environment variable <c>DEEPDENSITY_AMX=0</c> turns it off for the process.</para>
/// </remarks>
internal static unsafe class AmxRuntime
{
    private sealed record State(bool Available, string Status, IntPtr Code, IntPtr Config);

    private static readonly Lazy<State> s_state = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Whether the AMX micro-kernel can run in this process.</summary>
    public static bool IsAvailable => s_state.Value.Available;

    /// <summary>"in use", or why not (for benchmark reports and diagnostics).</summary>
    public static string Status => s_state.Value.Status;

    /// <summary>The 64-byte tile configuration the kernel loads: palette 1, tiles 0–7 of 16 rows × 64 bytes.</summary>
    internal static byte* Config => (byte*)s_state.Value.Config;

    /// <summary>Runs <c>dd_amx_panel</c> (see amx_kernels.c for the operands' layouts).</summary>
    internal static void Panel(sbyte* a, long lda, byte* b, int* c, long rowBlocks, long kSteps)
    {
        var state = s_state.Value;
        if (!state.Available) throw new InvalidOperationException("AMX is not available: " + state.Status);
        var kernel = (delegate* unmanaged<sbyte*, long, byte*, int*, long, long, byte*, void>)state.Code;
        kernel(a, lda, b, c, rowBlocks, kSteps, (byte*)state.Config);
    }

    private static State Initialize()
    {
        if (Environment.GetEnvironmentVariable("DEEPDENSITY_AMX") == "0") return Off("turned off by DEEPDENSITY_AMX=0");
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return Off("not Linux on x86-64");
        if (!X86Base.IsSupported) return Off("no CPUID");
        var (_, _, _, edx) = X86Base.CpuId(7, 0);
        bool tile = ((edx >> 24) & 1) != 0, int8 = ((edx >> 25) & 1) != 0;
        if (!tile || !int8) return Off("the CPU has no AMX-TILE/AMX-INT8");
        // glibc by its soname (a bare "libc" needs the development symlink or the runtime's own mapping); musl and
        // others fall back to the name.
        if (!NativeLibrary.TryLoad("libc.so.6", out var libc) && !NativeLibrary.TryLoad("libc", out libc)) return Off("libc not found");
        if (!NativeLibrary.TryGetExport(libc, "syscall", out var syscallExport) || !NativeLibrary.TryGetExport(libc, "mmap", out var mmapExport)
            || !NativeLibrary.TryGetExport(libc, "mprotect", out var mprotectExport))
            return Off("libc lacks syscall, mmap or mprotect");
        var syscall = (delegate* unmanaged<long, long, long, long>)syscallExport;
        var mmap = (delegate* unmanaged<IntPtr, nuint, int, int, int, long, IntPtr>)mmapExport;
        var mprotect = (delegate* unmanaged<IntPtr, nuint, int, int>)mprotectExport;
        // arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): the kernel refuses it (e.g. before 5.16) with -1.
        const long SysArchPrctl = 158, ArchReqXcompPerm = 0x1023, XFeatureXTileData = 18;
        if (syscall(SysArchPrctl, ArchReqXcompPerm, XFeatureXTileData) != 0)
            return Off(FormattableString.Invariant($"the kernel refused the AMX state (arch_prctl errno {Marshal.GetLastSystemError()})"));

        var code = AmxCode.Panel;
        const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;
        nuint pageBytes = 4096;
        IntPtr page = mmap(IntPtr.Zero, pageBytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == new IntPtr(-1)) return Off(FormattableString.Invariant($"mmap failed (errno {Marshal.GetLastSystemError()})"));
        // The tile configuration lives on the same page, after the code (the page is read-only once executable).
        const int ConfigOffset = 2048;
        if (code.Length > ConfigOffset) return Off("the kernel does not fit its page");
        code.CopyTo(new Span<byte>((void*)page, code.Length));
        var config = new Span<byte>((byte*)page + ConfigOffset, 64);
        config.Clear();
        config[0] = 1;                                                   // palette 1
        for (int t = 0; t < 8; t++)
        {
            config[16 + 2 * t] = 64;                                     // bytes per row
            config[48 + t] = 16;                                         // rows
        }
        if (mprotect(page, pageBytes, ProtRead | ProtExec) != 0)
            return Off(FormattableString.Invariant($"mprotect failed (errno {Marshal.GetLastSystemError()})"));
        var state = new State(true, "in use", page, page + ConfigOffset);
        return BinaryGemm.SelfTest(state.Code, state.Config) ? state with { Status = "in use (AMX-INT8)" }
            : Off("the self-test product differed from the exact reference");
    }

    private static State Off(string why) => new(false, why, IntPtr.Zero, IntPtr.Zero);
}
