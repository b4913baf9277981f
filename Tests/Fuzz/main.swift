// A libFuzzer target for everything swift-checkpoint reads from disk: shards (header, index,
// footer, chunks: zstd frames, the shuffle filter) and manifests.
//
// Built with `Scripts/fuzz` (`--sanitize=fuzzer --sanitize=address`), libFuzzer calls
// `LLVMFuzzerTestOneInput` with mutated inputs. Built normally, this program replays input
// files given as arguments (`checkpoint-fuzz crash-123`) or writes the seed corpus
// (`checkpoint-fuzz --make-corpus DIR`).
//
// The first byte of an input selects what the rest is fed to; see `FuzzInput` in Sources/Checkpoint/Fuzzing.

@_spi(Fuzzing) import Checkpoint
import Foundation

/// libFuzzer's entry point: feeds one input to the readers.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = ReaderFuzzing.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

// Under `--sanitize=fuzzer` the file is compiled as a library and libFuzzer provides `main`
// (replaying files given as arguments itself); this global is then never initialized.
// Built normally, initializing it is this program's top-level code.
let commandLine: Void = runCommandLine(Array(CommandLine.arguments.dropFirst()))

func runCommandLine(_ arguments: [String]) {
    if arguments.first == "--make-corpus", arguments.count == 2 {
        do {
            let count = try ReaderFuzzing.writeSeedCorpus(to: arguments[1])
            print("wrote \(count) seeds to \(arguments[1])")
        } catch {
            print("error: \(error)")
            exit(1)
        }
        return
    }
    for path in arguments {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            print("error: cannot read \(path)")
            exit(1)
        }
        let (mode, rejection) = ReaderFuzzing.run(Array(bytes))
        if let rejection {
            print("\(path) (\(mode)): rejected: \(rejection)")
        } else {
            print("\(path) (\(mode)): read completely")
        }
    }
}
