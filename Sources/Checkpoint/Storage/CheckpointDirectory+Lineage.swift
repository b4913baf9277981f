extension CheckpointDirectory {
    /// Checks that a manifest belongs to `lineage`'s run and follows the checkpoint it names as its
    /// predecessor, when that one is in this directory and readable (retention and flush intervals
    /// leave gaps, and a damaged predecessor is skipped by restore anyway).
    /// - Throws: `lineageMismatch`.
    func checkLineage(of manifest: Manifest, against lineage: Lineage) throws(CheckpointError) {
        let location = path(for: manifest.step)
        guard let record = manifest.lineage else {
            throw CheckpointError(
                .lineageMismatch,
                "checkpoint records no lineage but run '\(lineage.runID)' is configured: it was written without lineage or by another program; move it away, or restore without lineage once",
                path: location
            )
        }
        guard record.runID == lineage.runID else {
            throw CheckpointError(
                .lineageMismatch,
                "checkpoint belongs to run '\(PrintableText.escaped(record.runID))', not to the configured run '\(lineage.runID)'; move it away or configure its run",
                path: location
            )
        }
        guard let previous = record.previous, previous.step < manifest.step,
            Syscalls.isDirectory(path(for: previous.step)),
            let before = try? loadAuthenticatedManifest(step: previous.step)
        else { return }
        guard try before.lineageDigest() == previous.manifestSHA256 else {
            throw CheckpointError(
                .lineageMismatch,
                "checkpoint does not follow checkpoint \(previous.step) of this directory, which it names as its predecessor: one of the two was placed here from another attempt or directory",
                path: location
            )
        }
    }
}
