import Foundation
import Testing

/// Every Swift code sample of README.md, Documentation/*.md and the DocC catalog must appear, as
/// written, in a file the compiler builds (DocumentationExampleTests.swift and
/// DocumentationSamples.swift here; ServiceTests/ServiceDocumentationSamples.swift for the samples
/// that need CheckpointService and swift-prometheus), so that a sample that does not compile fails the build, and a new
/// sample that nobody compiles fails this test.
///
/// "As written" ignores what a file around a sample changes and nothing else: indentation and runs
/// of spaces (aligned comments), empty lines, `import` lines (a test file has its own) and a
/// `private` before a declaration at file scope. Package.swift fragments are not Swift a test can
/// compile and are left out.
@Suite("Documentation samples")
struct DocumentationSampleCoverageTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The documents whose Swift samples must compile.
    static var documents: [URL] {
        let fileManager = FileManager.default
        var documents = [root.appendingPathComponent("README.md")]
        for folder in ["Documentation", "Sources/Checkpoint/Docs.docc"] {
            let url = root.appendingPathComponent(folder)
            let names = (try? fileManager.contentsOfDirectory(atPath: url.path)) ?? []
            documents += names.filter { $0.hasSuffix(".md") }.sorted().map { url.appendingPathComponent($0) }
        }
        return documents
    }

    /// The fenced ```swift blocks of a Markdown text, with the line each starts on.
    static func samples(in text: String) -> [(line: Int, code: [String])] {
        var samples: [(Int, [String])] = []
        var current: (Int, [String])?
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```swift" {
                current = (number + 1, [])
            } else if let open = current, trimmed.hasPrefix("```") {
                samples.append(open)
                current = nil
            } else if current != nil {
                current?.1.append(String(line))
            }
        }
        return samples
    }

    /// A line as the comparison sees it (empty when it does not count).
    static func normalized(_ line: String) -> String {
        var line = line.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        line = line.trimmingCharacters(in: .whitespaces)
        if line.hasPrefix("import ") { return "" }
        for prefix in ["private ", "fileprivate "] where line.hasPrefix(prefix) { line.removeFirst(prefix.count) }
        return line
    }

    static func normalizedLines(_ lines: [String]) -> [String] {
        lines.map(normalized).filter { !$0.isEmpty }
    }

    static func isPackageManifest(_ code: [String]) -> Bool {
        code.contains { $0.contains(".package(") }
    }

    @Test("Every Swift sample in the documentation is compiled as written by this target")
    func everySampleIsCompiled() throws {
        let files = [
            "CheckpointTests/DocumentationExampleTests.swift", "CheckpointTests/DocumentationSamples.swift",
            "ServiceTests/ServiceDocumentationSamples.swift",
        ]
        let compiled = try files.flatMap { name in
            let url = Self.root.appendingPathComponent("Tests").appendingPathComponent(name)
            return Self.normalizedLines(try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n"))
        }
        var checked = 0
        var missing: [String] = []
        for document in Self.documents {
            let text = try String(contentsOf: document, encoding: .utf8)
            for (line, code) in Self.samples(in: text) where !Self.isPackageManifest(code) {
                checked += 1
                let sample = Self.normalizedLines(code)
                guard !sample.isEmpty else { continue }
                let found = compiled.indices.contains { start in
                    start + sample.count <= compiled.count && Array(compiled[start..<start + sample.count]) == sample
                }
                if !found {
                    let relative = document.path.replacingOccurrences(of: Self.root.path + "/", with: "")
                    missing.append("\(relative):\(line)")
                }
            }
        }
        #expect(checked > 40, "found only \(checked) samples; is the documentation where this test looks?")
        #expect(missing.isEmpty, "samples not compiled as written: \(missing.joined(separator: ", "))")
    }

    @Test("The sample check sees through indentation and alignment, and nothing else")
    func normalization() {
        #expect(Self.normalizedLines(["    try a()    // x", "", "import Checkpoint"]) == ["try a() // x"])
        #expect(Self.normalized("private struct Block: Codable {") == "struct Block: Codable {")
        #expect(Self.normalized("try restoreLatest(or: Block(shape: [4096, 4096]))") != Self.normalized("try x()"))
        let text = "intro\n```swift\nlet a = 1\n```\n```bash\nls\n```\n  ```swift\n  let b = 2\n  ```\n"
        #expect(Self.samples(in: text).map(\.code) == [["let a = 1"], ["  let b = 2"]])
    }
}
