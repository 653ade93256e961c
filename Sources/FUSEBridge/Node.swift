import BlockIO
import Synchronization

/// One entry of the mounted tree: a file (behaviour given by a `FileHandler`)
/// or a directory.
///
/// A node gets its inode number the first time the kernel sees it and keeps
/// it for its whole life, so a device that wants stable inode numbers keeps
/// its nodes (for example one node per queue, created with the queue).
/// A node belongs to at most one mounted tree.
public final class Node: Sendable {
    public enum Content: Sendable {
        case file(any FileHandler)
        case directory(Directory)
    }

    /// The entry's name within its directory (no "/", not "." or "..").
    public let name: String
    public let content: Content
    /// One line describing the entry, for the generated README ("" = not listed).
    public let about: String
    /// The inode number, 0 until the mounted file system assigns one.
    let inode = Atomic<UInt64>(0)

    public init(name: String, about: String = "", content: Content) {
        precondition(Node.isValidName(name), "invalid file name")
        self.name = name
        self.about = about
        self.content = content
    }

    /// The root node of a tree (its name is not used).
    public static func root(_ directory: Directory) -> Node {
        Node(rootOf: directory)
    }

    private init(rootOf directory: Directory) {
        name = "/"
        about = ""
        content = .directory(directory)
    }

    /// A file node.
    public static func file(_ name: String, about: String = "", _ handler: any FileHandler) -> Node {
        Node(name: name, about: about, content: .file(handler))
    }

    /// A directory node with fixed children (more may be added later with
    /// `Directory.add`).
    public static func directory(_ name: String, about: String = "", mode: UInt16 = 0o555,
                                 _ children: [Node] = []) -> Node {
        Node(name: name, about: about, content: .directory(Directory(mode: mode, children)))
    }

    /// A directory node around an existing `Directory` (for example a dynamic one).
    public static func directory(_ name: String, about: String = "", _ directory: Directory) -> Node {
        Node(name: name, about: about, content: .directory(directory))
    }

    /// The directory, when this node is one.
    public var directory: Directory? {
        if case .directory(let d) = content { return d }
        return nil
    }

    /// The file handler, when this node is a file.
    public var fileHandler: (any FileHandler)? {
        if case .file(let h) = content { return h }
        return nil
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.utf8.contains(UInt8(ascii: "/"))
            && !name.utf8.contains(0) && name.utf8.count <= 255
    }
}

/// A directory's children: a fixed, mutable set of nodes, plus optionally a
/// listing computed on every lookup and readdir (for entries that come and
/// go with device state, such as `queues/`).
///
/// A dynamic listing should return the same `Node` objects for the same
/// entries from one call to the next, so that inode numbers stay stable.
public final class Directory: Sendable {
    /// Permission bits (0o555 by default).
    public let mode: UInt16
    private let fixed: Locked<[Node]>
    private let listing: (@Sendable () -> [Node])?

    /// A directory with the given children, in listing order.
    public init(mode: UInt16 = 0o555, _ children: [Node] = []) {
        self.mode = mode
        self.fixed = Locked(children)
        self.listing = nil
    }

    /// A directory whose entries are computed by `listing` each time they
    /// are needed (plus any added with `add`).
    public init(mode: UInt16 = 0o555, listing: @escaping @Sendable () -> [Node]) {
        self.mode = mode
        self.fixed = Locked([])
        self.listing = listing
    }

    /// Adds a node, replacing any fixed child of the same name.
    public func add(_ node: Node) {
        fixed.withLock { nodes in
            if let i = nodes.firstIndex(where: { $0.name == node.name }) { nodes[i] = node } else { nodes.append(node) }
        }
    }

    /// Removes the fixed child of that name, if any.
    public func remove(named name: String) {
        fixed.withLock { nodes in nodes.removeAll { $0.name == name } }
    }

    /// The current children, fixed ones first, in listing order.
    public var children: [Node] {
        let nodes = fixed.withLock { $0 }
        guard let listing else { return nodes }
        return nodes + listing()
    }

    /// The child of that name, if any.
    public func child(named name: String) -> Node? {
        if let n = fixed.withLock({ nodes in nodes.first { $0.name == name } }) { return n }
        return listing?().first { $0.name == name }
    }
}
