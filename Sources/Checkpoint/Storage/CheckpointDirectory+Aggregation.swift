extension CheckpointDirectory {
    /// The bytes of a rank's shard in the committed checkpoint of `step`: its own file, or its
    /// region of its node's aggregated file, once the file's region table (read and checksummed:
    /// a few bytes per rank of the node) places the region where the manifest does. The other ranks'
    /// regions are not read.
    /// - Throws: `notFound` when the file is missing; `truncated`, `badMagic` or `corruptData` when
    ///   it was cut short or its table is damaged or disagrees with the manifest.
    func openShard(_ record: Manifest.Shard, step: Step) throws(CheckpointError) -> any ByteSource {
        let file = try OpenFile.openForReading(path(for: step) + "/" + record.file)
        guard let offset = record.offset else { return file }
        try checkRegionTable(record, in: file)
        return try RegionSource(file, offset: offset, length: record.fileBytes)
    }

    /// The shard of `rank` in the older checkpoint of `step` whose chunks an incremental shard uses,
    /// located through that checkpoint's manifest (with aggregation, the rank's region may sit in
    /// another node's file there).
    /// - Throws: `notFound` when the checkpoint or the rank's shard is missing.
    func openBaseShard(rank: Int, step: Step) throws(CheckpointError) -> any ByteSource {
        let manifest = try loadManifest(step: step)
        guard rank < manifest.shards.count else {
            throw CheckpointError(.notFound, "checkpoint \(step) has no shard of rank \(rank)", path: path(for: step))
        }
        return try openShard(manifest.shards[rank], step: step)
    }

    /// Checks the region table of the aggregated file that holds `record`'s shard (its checksum and
    /// bounds) and that it places the rank's region where the manifest does.
    /// - Throws: `corruptData`, `truncated` or `badMagic` when the table is damaged or disagrees.
    private func checkRegionTable(_ record: Manifest.Shard, in file: any ByteSource) throws(CheckpointError) {
        let regions = try AggregateFile.readTable(file)
        guard let region = regions.first(where: { $0.rank == record.rank }), region.offset == record.offset,
            region.length == record.fileBytes
        else {
            throw CheckpointError(
                .corruptData,
                "the aggregated file's region table does not place rank \(record.rank) where the manifest does",
                path: file.path
            )
        }
    }
}
