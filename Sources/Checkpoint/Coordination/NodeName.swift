import Foundation

/// How a communicator over processes names the node each rank runs on
/// (``Communicator/nodeName``), so that partner copies land on another node.
///
/// The resource manager knows best: under Slurm every task has `SLURMD_NODENAME`, the node its
/// `slurmd` runs as, which tells nodes apart even when several `slurmd` daemons share one host (a
/// test cluster) or when every node reports the same host name (some containers). Without a
/// resource manager's name, a communicator groups the ranks that share memory
/// (`MPI_Comm_split_type` with `MPI_COMM_TYPE_SHARED` under MPI) and names each group after its
/// lowest rank's host; without that either, the host name is the node name.
///
/// `MPICommunicator` resolves its ``Communicator/nodeName`` with ``resolve(resourceManager:sharedMemoryGroup:hostName:)``;
/// a communicator of your own can do the same.
public enum NodeName {
    /// The environment variables, in the order consulted, in which a resource manager names the
    /// node a task runs on: `SLURMD_NODENAME` (Slurm).
    public static let resourceManagerVariables = ["SLURMD_NODENAME"]

    /// The node name the resource manager gave this process: the first of
    /// ``resourceManagerVariables`` that is set and not empty.
    /// - Parameter environment: The process's environment (default: this process's).
    /// - Returns: The name, or `nil` outside a resource manager's allocation.
    public static func fromResourceManager(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String? {
        for variable in resourceManagerVariables {
            if let value = environment[variable], !value.isEmpty { return value }
        }
        return nil
    }

    /// The host name of this machine (`gethostname`).
    public static var hostName: String { Syscalls.hostName }

    /// The node name of a rank: the resource manager's name when there is one, else its
    /// shared-memory group's (`"HOST/LEADER"`: the group's lowest rank and that rank's host name),
    /// else the host name.
    /// - Parameters:
    ///   - resourceManager: ``fromResourceManager(_:)``.
    ///   - sharedMemoryGroup: The lowest rank of the ranks that share memory with this one, and its
    ///     host name; `nil` when the transport cannot tell.
    ///   - hostName: This rank's host name.
    /// - Returns: The name; ranks with the same name are assumed to lose their node-local storage together.
    public static func resolve(
        resourceManager: String?,
        sharedMemoryGroup: (leader: Int, hostName: String)?,
        hostName: String
    ) -> String {
        if let resourceManager, !resourceManager.isEmpty { return resourceManager }
        if let sharedMemoryGroup { return "\(sharedMemoryGroup.hostName)/\(sharedMemoryGroup.leader)" }
        return hostName
    }
}
