import Testing

@testable import Checkpoint

@Suite("Node names from the resource manager")
struct NodeNameTests {
    @Test("SLURMD_NODENAME names the node; an empty one does not")
    func resourceManagerVariable() {
        #expect(NodeName.fromResourceManager(["SLURMD_NODENAME": "n2", "HOSTNAME": "vm"]) == "n2")
        #expect(NodeName.fromResourceManager(["SLURMD_NODENAME": ""]) == nil)
        #expect(NodeName.fromResourceManager(["HOSTNAME": "vm"]) == nil)
    }

    @Test("the resource manager's name wins over the shared-memory group's, which wins over the host name")
    func precedence() {
        let group = (leader: 4, hostName: "vm")
        #expect(NodeName.resolve(resourceManager: "n2", sharedMemoryGroup: group, hostName: "vm") == "n2")
        #expect(NodeName.resolve(resourceManager: nil, sharedMemoryGroup: group, hostName: "vm") == "vm/4")
        #expect(NodeName.resolve(resourceManager: "", sharedMemoryGroup: group, hostName: "vm") == "vm/4")
        #expect(NodeName.resolve(resourceManager: nil, sharedMemoryGroup: nil, hostName: "vm") == "vm")
    }

    @Test("two Slurm nodes on one host get their partner copies on the other node")
    func partnersAcrossSlurmNodes() {
        // srun -N2 -n4 on two slurmd daemons of one host: ranks 0 and 1 on n1, 2 and 3 on n2.
        let names = ["n1", "n1", "n2", "n2"].map {
            NodeName.resolve(resourceManager: $0, sharedMemoryGroup: (leader: 0, hostName: "vm"), hostName: "vm")
        }
        let partners = PartnerMap(nodes: names)
        #expect(!partners.partnersShareNode)
        for rank in 0..<4 { #expect(names[partners.partner[rank]] != names[rank]) }
        // Without the resource manager's names, the shared-memory split puts every rank on one node.
        let split = PartnerMap(nodes: Array(repeating: "vm/0", count: 4))
        #expect(split.partnersShareNode)
    }
}
