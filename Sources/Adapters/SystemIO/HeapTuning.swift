#if canImport(Glibc)
import Glibc
#endif

/// glibc's heap settings for a program that streams large files through blocks of 64 KiB to 1 MiB allocated
/// and freed again for every chunk (swift-crypto's seal and open do so). By default glibc hands the top of the
/// heap back to the kernel whenever 128 KiB of it is free, and faults it in again at the next allocation: age
/// encryption or decryption of 1 GiB then took 140,000-310,000 page faults and up to twice the time.
public enum HeapTuning {
    /// Keeps up to `bytes` of freed heap for reuse, and serves blocks below 4 MiB from the heap. `mallopt` is
    /// looked up at run time: malloc.h is not part of the Glibc module. Elsewhere this does nothing.
    public static func keepFreedMemory(upTo bytes: Int32 = 64 << 20) {
        #if canImport(Glibc)
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3  // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD (malloc.h)
        _ = mallopt(trimThreshold, bytes)
        _ = mallopt(mmapThreshold, 4 << 20)
        #endif
    }
}
