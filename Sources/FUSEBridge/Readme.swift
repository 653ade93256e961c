/// The top-level README: one line per file of the tree that has an `about`
/// text, generated from the tree each time it is read.
public enum Readme {
    /// A README file node for the tree rooted at `root`.
    public static func node(root: Directory) -> Node {
        Node.file("README", about: "what each file is, one line each",
                  GeneratedFile(mode: 0o444, text: { [weak root] in
                      guard let root else { return "" }
                      return render(root)
                  }))
    }

    /// "path<spaces>about" lines, in tree order; directories end with "/".
    public static func render(_ root: Directory) -> String {
        var rows: [(String, String)] = []
        func walk(_ directory: Directory, prefix: String) {
            for node in directory.children {
                let path = prefix + node.name + (node.directory != nil ? "/" : "")
                if !node.about.isEmpty { rows.append((path, node.about)) }
                if let sub = node.directory { walk(sub, prefix: path) }
            }
        }
        walk(root, prefix: "")
        let width = max(16, (rows.map { $0.0.count }.max() ?? 0) + 1)
        return rows.map { path, about in
            path + String(repeating: " ", count: max(1, width - path.count)) + about + "\n"
        }.joined()
    }
}
