import FUSEBridge
import NVMeSpec
import Testing

/// The command line's value syntax: sizes, `--namespace` specs, and the
/// range checks of `validate()`.
@Suite("Command-line value parsers")
struct ConfigurationParseTests {
    // MARK: parseSize

    @Test(arguments: [
        ("0", 0), ("1", 1), ("4096", 4096), ("007", 7),
        ("1K", 1 << 10), ("1k", 1 << 10), ("1KB", 1 << 10), ("1kib", 1 << 10), ("1KiB", 1 << 10),
        ("64M", 64 << 20), ("64mb", 64 << 20), ("64MiB", 64 << 20),
        ("1G", 1 << 30), ("2GiB", 2 << 30), ("2gB", 2 << 30), ("3T", 3 << 40), ("3TiB", 3 << 40),
        ("0K", 0),
        ("18446744073709551615", UInt64.max),
        ("16777215T", 16_777_215 << 40), ("17179869183G", 17_179_869_183 << 30), ("18014398509481983K", UInt64.max - 1023),
    ] as [(String, UInt64)])
    func sizeAccepted(_ text: String, _ expected: UInt64) throws {
        #expect(try DeviceConfiguration.parseSize(text) == expected)
    }

    @Test(arguments: [
        "", "K", "GiB", "iB", "B", "-1", "+1", "1.5G", "1 G", " 1", "1 ", "1P", "1B", "1iB", "1Ki", "1KiBB", "1GK",
        "0x10", "abc", "1,000", "1_000", "\u{FF11}K",
    ])
    func sizeMalformed(_ text: String) {
        let error = #expect(throws: ConfigurationError.self) { try DeviceConfiguration.parseSize(text) }
        #expect(error?.message == "invalid size '\(text)' (expected a number with an optional K, M, G or T suffix)")
    }

    @Test(arguments: [
        "16777216T", "17179869184G", "18014398509481984K", "18446744073709551616", "99999999999999999999999K",
    ])
    func sizeTooLarge(_ text: String) {
        let error = #expect(throws: ConfigurationError.self) { try DeviceConfiguration.parseSize(text) }
        #expect(error?.message == "size '\(text)' is too large")
    }

    // MARK: parseNamespace

    typealias Namespace = DeviceConfiguration.Namespace

    @Test(arguments: [
        ("/a.img", Namespace(path: "/a.img")),
        ("a.img", Namespace(path: "a.img")),
        ("/dir with space/x=y.img", Namespace(path: "/dir with space/x=y.img")),
        ("/a.img,size=1M", Namespace(path: "/a.img", size: 1 << 20, sizeGiven: true)),
        ("/a.img,size=0", Namespace(path: "/a.img", size: 0, sizeGiven: true)),  // refused by validate()
        ("/a.img,lbads=9", Namespace(path: "/a.img", lbads: 9, formatGiven: true)),
        ("/a.img,lbads=12", Namespace(path: "/a.img", lbads: 12, formatGiven: true)),
        ("/a.img,lbads=10", Namespace(path: "/a.img", lbads: 10, formatGiven: true)),  // refused by validate()
        ("/a.img,ms=0", Namespace(path: "/a.img", ms: 0, formatGiven: true)),
        ("/a.img,ms=65535", Namespace(path: "/a.img", ms: 65535, formatGiven: true)),  // refused by validate()
        ("/a.img,mset=0", Namespace(path: "/a.img", formatGiven: true)),
        ("/a.img,ms=16,mset=1", Namespace(path: "/a.img", ms: 16, extended: true, formatGiven: true)),
        ("/a.img,pi=0", Namespace(path: "/a.img", formatGiven: true)),
        ("/a.img,ms=8,pi=3,pil=1", Namespace(path: "/a.img", ms: 8, pi: .type3, piFirst: true, formatGiven: true)),
        ("/a.img,pil=0,pi=2,ms=64,lbads=12,mset=1",
         Namespace(path: "/a.img", lbads: 12, ms: 64, extended: true, pi: .type2, formatGiven: true)),
        ("/a.img,readonly", Namespace(path: "/a.img", readOnly: true)),
        ("/a.img,ro", Namespace(path: "/a.img", readOnly: true)),
        ("/a.img,readonly,ms=8,lbads=12,size=2G",
         Namespace(path: "/a.img", size: 2 << 30, sizeGiven: true, lbads: 12, ms: 8, formatGiven: true, readOnly: true)),
    ])
    func namespaceAccepted(_ spec: String, _ expected: Namespace) throws {
        #expect(try DeviceConfiguration.parseNamespace(spec) == expected)
    }

    static let sizeRule = "(expected a number with an optional K, M, G or T suffix)"
    static let optionRule = "(expected size=, lbads=, ms=, mset=, pi=, pil= or readonly)"

    @Test(arguments: [
        ("", "--namespace '': missing image path"),
        (",size=1M", "--namespace ',size=1M': missing image path"),
        ("/a,size=", "invalid size '' \(sizeRule)"),
        ("/a,size=1X", "invalid size '1X' \(sizeRule)"),
        ("/a,size=16777216T", "size '16777216T' is too large"),
        ("/a,lbads=", "--namespace: invalid lbads '' (expected 9 or 12)"),
        ("/a,lbads=x", "--namespace: invalid lbads 'x' (expected 9 or 12)"),
        ("/a,lbads=256", "--namespace: invalid lbads '256' (expected 9 or 12)"),
        ("/a,lbads=-1", "--namespace: invalid lbads '-1' (expected 9 or 12)"),
        ("/a,lbads=+9", "--namespace: invalid lbads '+9' (expected 9 or 12)"),
        ("/a,lbads=0x9", "--namespace: invalid lbads '0x9' (expected 9 or 12)"),
        ("/a,ms=", "--namespace: invalid ms '' (expected 0, 8, 16 or 64)"),
        ("/a,ms=65536", "--namespace: invalid ms '65536' (expected 0, 8, 16 or 64)"),
        ("/a,ms=-1", "--namespace: invalid ms '-1' (expected 0, 8, 16 or 64)"),
        ("/a,ms=+8", "--namespace: invalid ms '+8' (expected 0, 8, 16 or 64)"),
        ("/a,", "--namespace: unknown option '' \(optionRule)"),
        ("/a,,size=1M", "--namespace: unknown option '' \(optionRule)"),
        ("/a,size", "--namespace: unknown option 'size' \(optionRule)"),
        ("/a,lbads", "--namespace: unknown option 'lbads' \(optionRule)"),
        ("/a,ms", "--namespace: unknown option 'ms' \(optionRule)"),
        ("/a,readonly=1", "--namespace: unknown option 'readonly=1' \(optionRule)"),
        ("/a,ro=", "--namespace: unknown option 'ro=' \(optionRule)"),
        ("/a,SIZE=1M", "--namespace: unknown option 'SIZE=1M' \(optionRule)"),
        ("/a,bogus=1", "--namespace: unknown option 'bogus=1' \(optionRule)"),
        ("/a,size=1M,size=2M", "--namespace: size= given twice"),
        ("/a,lbads=9,lbads=12", "--namespace: lbads= given twice"),
        ("/a,ms=0,ms=8", "--namespace: ms= given twice"),
        ("/a,readonly,ro", "--namespace: readonly given twice"),
        ("/a,mset=2", "--namespace: invalid mset '2' (expected 0 or 1)"),
        ("/a,mset=", "--namespace: invalid mset '' (expected 0 or 1)"),
        ("/a,pil=yes", "--namespace: invalid pil 'yes' (expected 0 or 1)"),
        ("/a,pi=4", "--namespace: invalid pi '4' (expected 0, 1, 2 or 3)"),
        ("/a,pi=x", "--namespace: invalid pi 'x' (expected 0, 1, 2 or 3)"),
        ("/a,pi", "--namespace: unknown option 'pi' \(optionRule)"),
        ("/a,pi=1,pi=2", "--namespace: pi= given twice"),
        ("/a,mset=1,mset=1", "--namespace: mset= given twice"),
    ])
    func namespaceRefused(_ spec: String, _ message: String) {
        let error = #expect(throws: ConfigurationError.self) { try DeviceConfiguration.parseNamespace(spec) }
        #expect(error?.message == message)
    }

    // MARK: validate

    static func valid() -> DeviceConfiguration { DeviceConfiguration(namespaces: [Namespace(path: "/a.img", size: 1 << 20)]) }

    static func with(_ change: (inout DeviceConfiguration) -> Void) -> DeviceConfiguration {
        var c = valid()
        change(&c)
        return c
    }

    static let accepted: [(String, DeviceConfiguration)] = [
        ("defaults", valid()),
        ("lbads 12, size one LBA", with { $0.namespaces[0] = Namespace(path: "/a.img", size: 4096, lbads: 12) }),
        ("lbads 9, size one LBA", with { $0.namespaces[0].size = 512 }),
        ("4096+8 PI type 1", with { $0.namespaces[0] = Namespace(path: "/a.img", size: 4096, lbads: 12, ms: 8, pi: .type1) }),
        ("512+64 extended PI type 3 first", with {
            $0.namespaces[0] = Namespace(path: "/a.img", size: 512, ms: 64, extended: true, pi: .type3, piFirst: true)
        }),
        ("512+16 separate", with { $0.namespaces[0].ms = 16 }),
        ("two namespaces", with { $0.namespaces.append(Namespace(path: "/b.img", size: 512)) }),
        ("no mem", with { $0.memSize = 0 }),
        ("mem one page", with { $0.memSize = 4096 }),
        ("queues 1", with { $0.queues = 1 }), ("queues 65535", with { $0.queues = 65535 }),
        ("mqes 1", with { $0.mqes = 1 }), ("mqes 65535", with { $0.mqes = 65535 }),
        ("mdts 0", with { $0.mdts = 0 }), ("mdts 255", with { $0.mdts = 255 }),
        ("aerl 0", with { $0.aerl = 0 }), ("aerl 255", with { $0.aerl = 255 }),
        ("fuse threads 1", with { $0.fuseThreads = 1 }), ("fuse threads 256", with { $0.fuseThreads = 256 }),
        ("cmb 4 KiB", with { $0.cmbSize = 4096 }),
        ("serial 1 char", with { $0.serial = "S" }),
        ("serial 20 chars", with { $0.serial = String(repeating: "9", count: 20) }),
        ("serial printable edges", with { $0.serial = " ~" }),
        ("model 40 chars", with { $0.model = String(repeating: "m", count: 40) }),
        ("max namespaces 1", with { $0.maxNamespaces = 1 }),
        ("max namespaces 65535", with { $0.maxNamespaces = 65535 }),
        ("capacity 0 (nothing can be created)", with { $0.capacity = 0 }),
        ("ns-dir", with { $0.nsDir = "/var/tmp/ns" }),
        ("nbd export", with { $0.namespaces[0] = Namespace(path: "nbd://server:10809/disk", lbads: 12, formatGiven: true) }),
        ("nbd+unix export", with { $0.namespaces[0] = Namespace(path: "nbd+unix:///?socket=/run/s", readOnly: true) }),
    ]

    @Test(arguments: accepted)
    func validateAccepts(_ name: String, _ configuration: DeviceConfiguration) throws {
        try configuration.validate()
    }

    static let refused: [(DeviceConfiguration, String)] = [
        (DeviceConfiguration(namespaces: []), "no namespace"),
        (with { $0.namespaces[0].lbads = 10 }, "namespace /a.img: lbads must be 9 or 12, not 10"),
        (with { $0.namespaces[0].lbads = 0 }, "namespace /a.img: lbads must be 9 or 12, not 0"),
        (with { $0.namespaces[0].size = 0 }, "namespace /a.img: size must not be 0"),
        (with { $0.namespaces[0].ms = 7 }, "namespace /a.img: ms must be 0, 8, 16 or 64, not 7"),
        (with { $0.namespaces[0].ms = 65535 }, "namespace /a.img: ms must be 0, 8, 16 or 64, not 65535"),
        (with { $0.namespaces[0].pi = .type1 },
         "namespace /a.img: protection information needs at least 8 bytes of metadata (ms=0)"),
        (with { $0.namespaces[0].extended = true }, "namespace /a.img: mset=1 needs metadata (ms=8, 16 or 64)"),
        (with { $0.namespaces[0].ms = 8; $0.namespaces[0].piFirst = true },
         "namespace /a.img: pil=1 needs protection information (pi=1, 2 or 3)"),
        (with { $0.namespaces[0].size = 513 }, "namespace /a.img: size 513 is not a multiple of the LBA size 512"),
        (with { $0.namespaces[0] = Namespace(path: "/a.img", size: 512, lbads: 12) },
         "namespace /a.img: size 512 is not a multiple of the LBA size 4096"),
        (with { $0.namespaces.append(Namespace(path: "/a.img", size: 512)) }, "namespace image /a.img is given twice"),
        (with { $0.memSize = 4097 }, "--mem 4097 is not a multiple of 4 KiB"),
        (with { $0.memSize = 2048 }, "--mem 2048 is not a multiple of 4 KiB"),
        (with { $0.queues = 0 }, "--queues must be 1...65535, not 0"),
        (with { $0.queues = 65536 }, "--queues must be 1...65535, not 65536"),
        (with { $0.queues = -1 }, "--queues must be 1...65535, not -1"),
        (with { $0.mqes = 0 }, "--mqes must be 1...65535, not 0"),
        (with { $0.mqes = 65536 }, "--mqes must be 1...65535, not 65536"),
        (with { $0.mdts = -1 }, "--mdts must be 0...255, not -1"),
        (with { $0.mdts = 256 }, "--mdts must be 0...255, not 256"),
        (with { $0.aerl = -1 }, "--aerl must be 0...255, not -1"),
        (with { $0.aerl = 256 }, "--aerl must be 0...255, not 256"),
        (with { $0.fuseThreads = 0 }, "--fuse-threads must be 1...256, not 0"),
        (with { $0.fuseThreads = 257 }, "--fuse-threads must be 1...256, not 257"),
        (with { $0.cmbSize = 4095 }, "--cmb 4095 is not a multiple of 4 KiB"),
        (with { $0.cmbSize = 6144 }, "--cmb 6144 is not a multiple of 4 KiB"),
        (with { $0.serial = "" }, "--serial must be 1 to 20 printable ASCII characters"),
        (with { $0.serial = String(repeating: "9", count: 21) }, "--serial must be 1 to 20 printable ASCII characters"),
        (with { $0.serial = "caf\u{E9}" }, "--serial must be 1 to 20 printable ASCII characters"),
        (with { $0.serial = "a\tb" }, "--serial must be 1 to 20 printable ASCII characters"),
        (with { $0.serial = "a\u{7F}" }, "--serial must be 1 to 20 printable ASCII characters"),
        (with { $0.model = "" }, "--model must be 1 to 40 printable ASCII characters"),
        (with { $0.model = String(repeating: "m", count: 41) }, "--model must be 1 to 40 printable ASCII characters"),
        (with { $0.model = "x\n" }, "--model must be 1 to 40 printable ASCII characters"),
        (with { $0.maxNamespaces = 0 }, "--max-namespaces must be 1...65535, not 0"),
        (with { $0.maxNamespaces = 65536 }, "--max-namespaces must be 1...65535, not 65536"),
        (with { $0.namespaces.append(Namespace(path: "/b.img", size: 512)); $0.maxNamespaces = 1 },
         "2 namespaces given, more than --max-namespaces 1"),
        (with { $0.nsDir = "" }, "--ns-dir must not be empty"),
        (with { $0.namespaces[0] = Namespace(path: "nbd://h/e", ms: 8, formatGiven: true) },
         "namespace nbd://h/e: an NBD export has no metadata (ms=0 only, no pi=; docs/NBD.md)"),
        (with { $0.namespaces[0] = Namespace(path: "nbd+unix:///e?socket=/s", size: 4096, sizeGiven: true) },
         "namespace nbd+unix:///e?socket=/s: size= does not apply to an NBD export (the server sets its size)"),
        // the first problem is the one reported
        (with { $0.namespaces[0].lbads = 10; $0.queues = 0 }, "namespace /a.img: lbads must be 9 or 12, not 10"),
        (with { $0.queues = 0; $0.serial = "" }, "--queues must be 1...65535, not 0"),
    ]

    @Test(arguments: refused)
    func validateRefuses(_ configuration: DeviceConfiguration, _ message: String) {
        let error = #expect(throws: ConfigurationError.self) { try configuration.validate() }
        #expect(error?.message == message)
    }

    @Test func nbdURIsAreRecognizedByScheme() {
        for uri in ["nbd://h/e", "NBD://h", "nbds://h:1/e", "nbd+unix:///e?socket=/s", "nbds+unix:///?socket=/s",
                    "nbd+vsock://2/e"] {
            #expect(Namespace.isNBDURI(uri), "\(uri)")
        }
        for path in ["/a.img", "a.img", "nbd.img", "nbd:/x", "./nbd://x", "http://h/e"] {
            #expect(!Namespace.isNBDURI(path), "\(path)")
        }
    }
}
