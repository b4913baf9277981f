import Foundation
import Testing

@testable import Checkpoint

/// `Syscalls.adviseHugePages`: a restore advises the kernel to back the destination of a large
/// entry with transparent huge pages, so that filling it takes a fault per 2 MiB, not per 4 KiB.
@Suite("Huge-page advice for restored entries")
struct HugePageAdviceTests {
    /// The `VmFlags` of the mapping in `/proc/self/smaps` that holds `address`.
    static func mappingFlags(of address: UnsafeRawPointer) throws -> [Substring] {
        // Files in /proc report a size of 0: read to the end rather than by size.
        let file = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
        defer { try? file.close() }
        let smaps = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        let target = UInt(bitPattern: Int(bitPattern: address))
        var inside = false
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), let space = line.firstIndex(of: " "), dash < space,
                let start = UInt(line[..<dash], radix: 16),
                let end = UInt(line[line.index(after: dash)..<space], radix: 16)
            {
                inside = (start..<end).contains(target)
            } else if inside, line.hasPrefix("VmFlags:") {
                return line.dropFirst("VmFlags:".count).split(separator: " ")
            }
        }
        Issue.record("no mapping in /proc/self/smaps holds \(address)")
        return []
    }

    @Test("A region of several huge pages is advised (its mapping carries the hg flag); a small buffer is left alone")
    func advice() throws {
        // A mapping of the test's own: malloc's memory is shared with tests running alongside,
        // whose restores advise parts of it.
        let size = 16 << 20
        let region = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        try #require(region != MAP_FAILED)
        defer { munmap(region, size) }
        let middle = UnsafeRawPointer(region) + size / 2
        Syscalls.adviseHugePages(UnsafeMutableRawBufferPointer(start: region, count: 64 << 10))
        Syscalls.adviseHugePages(UnsafeMutableRawBufferPointer(start: nil, count: 0))
        #expect(try !Self.mappingFlags(of: middle).contains("hg"))
        Syscalls.adviseHugePages(UnsafeMutableRawBufferPointer(start: region, count: size))
        #expect(try Self.mappingFlags(of: middle).contains("hg"))
    }

    @Test("A working buffer of several huge pages is aligned to one and advised")
    func workingBuffer() throws {
        let buffer = Syscalls.allocateWorkingBuffer(byteCount: 9 << 20)
        defer { buffer.deallocate() }
        #expect(Int(bitPattern: buffer.baseAddress) % (2 << 20) == 0)
        #expect(try Self.mappingFlags(of: UnsafeRawPointer(buffer.baseAddress!) + (4 << 20)).contains("hg"))
        let empty = Syscalls.allocateWorkingBuffer(byteCount: 0)
        defer { empty.deallocate() }
        #expect(empty.count == 1)
    }

    @Test("A large entry restores to the same values through the advised destination")
    func restore() throws {
        try withTemporaryDirectory { directory in
            let state = ArrayState((0..<(3 << 20)).map { Double($0) * 0.5 })
            let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
            _ = try checkpointer.save(state, step: 1)
            #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.state == state)
        }
    }
}
