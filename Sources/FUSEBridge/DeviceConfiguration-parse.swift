import NVMeSpec

/// Parsing of the command line's value syntax (CONTRACT §2).
extension DeviceConfiguration {
    /// Parses a size: decimal digits with an optional binary suffix K, M, G
    /// or T (case-insensitive, optionally followed by "iB" or "B"):
    /// "4096", "64M", "1G", "2GiB".
    /// `--atomicity FIELD=N[,FIELD=N...]`: the fields of `atomicityFields`,
    /// each 0...65535 (logical blocks, 0's based).
    public static func parseAtomicity(_ text: String) throws(ConfigurationError) -> [String: Int] {
        var out: [String: Int] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, atomicityFields.contains(String(parts[0])) else {
                throw ConfigurationError("--atomicity: '\(item)' is not FIELD=N with FIELD one of \(atomicityFields.joined(separator: ", "))")
            }
            guard let n = Int(parts[1]), (0...65535).contains(n) else {
                throw ConfigurationError("--atomicity: \(parts[0]) must be 0...65535, not '\(parts[1])'")
            }
            out[String(parts[0])] = n
        }
        return out
    }

    public static func parseSize(_ text: String) throws(ConfigurationError) -> UInt64 {
        var digits = Substring(text)
        var shift: UInt64 = 0
        let lower = text.lowercased()
        for (suffix, s) in [("kib", 10), ("mib", 20), ("gib", 30), ("tib", 40),
                            ("kb", 10), ("mb", 20), ("gb", 30), ("tb", 40),
                            ("k", 10), ("m", 20), ("g", 30), ("t", 40)] as [(String, UInt64)]
        where lower.hasSuffix(suffix) {
            digits = digits.dropLast(suffix.count)
            shift = s
            break
        }
        guard isDecimal(digits) else {
            throw ConfigurationError("invalid size '\(text)' (expected a number with an optional K, M, G or T suffix)")
        }
        // Well-formed digits that do not fit are too large, not invalid.
        guard let value = UInt64(digits), value <= UInt64.max >> shift else {
            throw ConfigurationError("size '\(text)' is too large")
        }
        return value << shift
    }

    /// Only ASCII decimal digits, at least one (no sign, unlike `UInt64(_:)`).
    static func isDecimal(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// Parses `PATH[,size=SIZE][,lbads=9|12][,ms=0|8|16|64][,mset=0|1]
    /// [,pi=0|1|2|3][,pil=0|1][,readonly]`, each option at most once. The
    /// path is returned as given (made absolute by `resolvePaths`); value
    /// ranges and combinations are checked by `validate()`.
    public static func parseNamespace(_ spec: String) throws(ConfigurationError) -> Namespace {
        let parts = spec.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let path = parts.first, !path.isEmpty else {
            throw ConfigurationError("--namespace '\(spec)': missing image path")
        }
        var ns = Namespace(path: path)
        var seen = Set<String>()
        let formatKeys: Set<String> = ["lbads", "ms", "mset", "pi", "pil"]
        for part in parts.dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let key = kv[0], value = kv.count > 1 ? kv[1] : nil
            let option: String? = switch (key, value) {
            case ("size", _?): key + "="
            case (_, _?) where formatKeys.contains(key): key + "="
            case ("readonly", nil), ("ro", nil): "readonly"
            default: nil
            }
            if let option, !seen.insert(option).inserted { throw ConfigurationError("--namespace: \(option) given twice") }
            if formatKeys.contains(key) && value != nil { ns.formatGiven = true }
            switch (key, value) {
            case ("size", let v?):
                ns.size = try parseSize(v)
                ns.sizeGiven = true
            case ("lbads", let v?):
                guard isDecimal(v), let l = UInt8(v) else { throw ConfigurationError("--namespace: invalid lbads '\(v)' (expected 9 or 12)") }
                ns.lbads = l
            case ("ms", let v?):
                guard isDecimal(v), let m = UInt16(v) else { throw ConfigurationError("--namespace: invalid ms '\(v)' (expected 0, 8, 16 or 64)") }
                ns.ms = m
            case ("mset", let v?):
                ns.extended = try flag(v, "mset")
            case ("pi", let v?):
                guard isDecimal(v), let t = UInt8(v), let type = ProtectionType(rawValue: t) else {
                    throw ConfigurationError("--namespace: invalid pi '\(v)' (expected 0, 1, 2 or 3)")
                }
                ns.pi = type
            case ("pil", let v?):
                ns.piFirst = try flag(v, "pil")
            case ("readonly", nil), ("ro", nil):
                ns.readOnly = true
            default:
                throw ConfigurationError("--namespace: unknown option '\(part)' "
                                         + "(expected size=, lbads=, ms=, mset=, pi=, pil= or readonly)")
            }
        }
        return ns
    }

    /// A 0|1 option value.
    private static func flag(_ v: String, _ name: String) throws(ConfigurationError) -> Bool {
        switch v {
        case "0": return false
        case "1": return true
        default: throw ConfigurationError("--namespace: invalid \(name) '\(v)' (expected 0 or 1)")
        }
    }

    /// Range checks that need no file system: lbads, sizes, queue counts,
    /// identifiers. Throws the first problem found.
    public func validate() throws(ConfigurationError) {
        guard !namespaces.isEmpty else { throw ConfigurationError("no namespace") }
        for ns in namespaces {
            if ns.isNBD { try ns.validateNBD() }
            guard ns.lbads == 9 || ns.lbads == 12 else {
                throw ConfigurationError("namespace \(ns.path): lbads must be 9 or 12, not \(ns.lbads)")
            }
            if let why = ns.format.invalidReason { throw ConfigurationError("namespace \(ns.path): \(why)") }
            guard !ns.extended || ns.ms > 0 else {
                throw ConfigurationError("namespace \(ns.path): mset=1 needs metadata (ms=8, 16 or 64)")
            }
            guard !ns.piFirst || ns.pi != .none else {
                throw ConfigurationError("namespace \(ns.path): pil=1 needs protection information (pi=1, 2 or 3)")
            }
            guard ns.size > 0 else { throw ConfigurationError("namespace \(ns.path): size must not be 0") }
            guard ns.size % ns.lbaSize == 0 else {
                throw ConfigurationError("namespace \(ns.path): size \(ns.size) is not a multiple of the LBA size \(ns.lbaSize)")
            }
        }
        var seen = Set<String>()
        for ns in namespaces where !seen.insert(ns.path).inserted {
            throw ConfigurationError("namespace image \(ns.path) is given twice")
        }
        guard memSize % 4096 == 0 else {
            throw ConfigurationError("--mem \(memSize) is not a multiple of 4 KiB")
        }
        guard (1...65535).contains(queues) else { throw ConfigurationError("--queues must be 1...65535, not \(queues)") }
        guard (1...65535).contains(mqes) else { throw ConfigurationError("--mqes must be 1...65535, not \(mqes)") }
        guard (0...255).contains(mdts) else { throw ConfigurationError("--mdts must be 0...255, not \(mdts)") }
        guard (0...255).contains(aerl) else { throw ConfigurationError("--aerl must be 0...255, not \(aerl)") }
        if let t = fuseThreads, !(1...256).contains(t) {
            throw ConfigurationError("--fuse-threads must be 1...256, not \(t)")
        }
        guard cmbSize % 4096 == 0 else { throw ConfigurationError("--cmb \(cmbSize) is not a multiple of 4 KiB") }
        guard (1...Self.maxNamespacesLimit).contains(maxNamespaces) else {
            throw ConfigurationError("--max-namespaces must be 1...\(Self.maxNamespacesLimit), not \(maxNamespaces)")
        }
        guard namespaces.count <= maxNamespaces else {
            throw ConfigurationError("\(namespaces.count) namespaces given, more than --max-namespaces \(maxNamespaces)")
        }
        if let nsDir, nsDir.isEmpty { throw ConfigurationError("--ns-dir must not be empty") }
        if let why = controllerParameters.atomicityProblem { throw ConfigurationError("--atomicity: \(why)") }
        guard !allowOtherWrite || allowOther else {
            throw ConfigurationError("--allow-other-write needs --allow-other")
        }
        try Self.checkIdentifier(serial, option: "--serial", maxLength: 20)
        try Self.checkIdentifier(model, option: "--model", maxLength: 40)
    }

    /// The largest `--max-namespaces`.
    public static let maxNamespacesLimit = 65535

    private static func checkIdentifier(_ value: String, option: String, maxLength: Int) throws(ConfigurationError) {
        guard !value.isEmpty, value.utf8.count <= maxLength, value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw ConfigurationError("\(option) must be 1 to \(maxLength) printable ASCII characters")
        }
    }
}
