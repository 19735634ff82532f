/*
 * The AMX (Intel Advanced Matrix Extensions) micro-kernel of BinaryGemm, compiled to the machine code in
 * AmxCode.g.cs by build/amx/regenerate.sh (gcc -O2 -mamx-tile -mamx-int8). .NET exposes no AMX intrinsics, so the
 * library maps these bytes into executable memory and calls them through a function pointer; this file is their
 * source, and the test AmxCodeMatchesItsSource recompiles it and compares the bytes when gcc is present.
 *
 * One call computes one 32-column panel of C for every 16-row block of A (three blocks at a time, then the rest):
 *   a       signed bytes (0 or 1), row-major, `lda` bytes per row, k padded with zeros to kSteps * 64;
 *   b       the panel of B as three byte limbs of 24-bit fixed-point integers q = l0 + 256 l1 + 65536 l2
 *           (l0, l1 unsigned, l2 signed), laid out per k-step of 64 as six 1 KB tiles, [limb][16-column half],
 *           each 16 rows of 64 bytes where row r holds, for column j, the 4 bytes of k = 4r .. 4r + 3;
 *   c       per 16-row block, 16 rows of 96 int32: [limb 0: 32 columns][limb 1: 32][limb 2: 32];
 *   config  the 64-byte tile configuration (palette 1, eight tiles of 16 rows x 64 bytes).
 * Every sum is an exact int32 (|sum| <= 255 * k), so the result depends on nothing but the operands.
 * Position-independent, no calls, no data: the bytes can run from any address.
 */
#include <stdint.h>
#include <immintrin.h>

void dd_amx_panel(const void* a, long lda, const void* b, int32_t* c, long rowBlocks, long kSteps, const void* config)
{
    _tile_loadconfig(config);
    long blk = 0;
    /* Three row blocks at a time, one (limb, half) tile of B per pass: each B tile loaded serves three products and
       the three blocks of A (3 KB per k-step) stay in L1 over the six passes; B streams from L2 at a third of the
       rate of the one-block loop below, which measured 1.2-1.6x slower on the RBM's shapes. */
    for (; blk + 3 <= rowBlocks; blk += 3)
    {
        const char* ap = (const char*)a + blk * 16 * lda;
        for (long combo = 0; combo < 6; combo++)            /* combo = 2 * limb + half */
        {
            const char* bp = (const char*)b + combo * 1024;
            _tile_zero(0); _tile_zero(1); _tile_zero(2);
            if (combo < 4)
                for (long s = 0; s < kSteps; s++)
                {
                    _tile_loadd(7, bp + s * 6144, 64);
                    _tile_loadd(3, ap + s * 64, lda);            _tile_dpbsud(0, 3, 7);
                    _tile_loadd(4, ap + 16 * lda + s * 64, lda); _tile_dpbsud(1, 4, 7);
                    _tile_loadd(5, ap + 32 * lda + s * 64, lda); _tile_dpbsud(2, 5, 7);
                }
            else
                for (long s = 0; s < kSteps; s++)
                {
                    _tile_loadd(7, bp + s * 6144, 64);
                    _tile_loadd(3, ap + s * 64, lda);            _tile_dpbssd(0, 3, 7);
                    _tile_loadd(4, ap + 16 * lda + s * 64, lda); _tile_dpbssd(1, 4, 7);
                    _tile_loadd(5, ap + 32 * lda + s * 64, lda); _tile_dpbssd(2, 5, 7);
                }
            int32_t* cp = c + blk * 16 * 96 + combo * 16;
            _tile_stored(0, cp, 384); _tile_stored(1, cp + 16 * 96, 384); _tile_stored(2, cp + 32 * 96, 384);
        }
    }
    /* The last one or two row blocks: all six (limb, half) tiles of one block at once. */
    for (; blk < rowBlocks; blk++)
    {
        const char* ap = (const char*)a + blk * 16 * lda;
        const char* bp = (const char*)b;
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3); _tile_zero(4); _tile_zero(5);
        for (long s = 0; s < kSteps; s++)
        {
            _tile_loadd(6, ap + s * 64, lda);
            _tile_loadd(7, bp, 64);        _tile_dpbsud(0, 6, 7);
            _tile_loadd(7, bp + 1024, 64); _tile_dpbsud(1, 6, 7);
            _tile_loadd(7, bp + 2048, 64); _tile_dpbsud(2, 6, 7);
            _tile_loadd(7, bp + 3072, 64); _tile_dpbsud(3, 6, 7);
            _tile_loadd(7, bp + 4096, 64); _tile_dpbssd(4, 6, 7);
            _tile_loadd(7, bp + 5120, 64); _tile_dpbssd(5, 6, 7);
            bp += 6144;
        }
        int32_t* cp = c + blk * 16 * 96;
        _tile_stored(0, cp, 384);      _tile_stored(1, cp + 16, 384);
        _tile_stored(2, cp + 32, 384); _tile_stored(3, cp + 48, 384);
        _tile_stored(4, cp + 64, 384); _tile_stored(5, cp + 80, 384);
    }
    _tile_release();
}
