/// The entry points of the `checkpoint-fuzz` target (`Tests/Fuzz`, `Scripts/fuzz`): everything the
/// library reads from disk, fed bytes directly. Not API.
@_spi(Fuzzing) public enum ReaderFuzzing {
    /// Feeds one input to the reader its first byte selects (see `FuzzInput.Mode`).
    /// - Returns: The mode's name, and why the input was rejected (`nil`: it read completely).
    public static func run(_ bytes: [UInt8]) -> (mode: String, rejection: (any Error)?) {
        let input = FuzzInput(bytes)
        return ("\(input.mode)", input.run())
    }

    /// Writes the seed corpus (real shards, indexes, chunks and manifests the library wrote).
    /// - Returns: The number of seeds written.
    /// - Throws: When a seed cannot be produced or written.
    public static func writeSeedCorpus(to folder: String) throws -> Int {
        try SeedCorpus.write(to: folder)
    }
}
