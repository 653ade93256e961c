import Testing
import NVMeSpec

@Suite struct SMARTHealthLogTests {
    typealias S = SMARTHealthLog

    /// NVMe 1.4 Figure 196.
    static var pins: [FieldPin<S>] {
        var p: [FieldPin<S>] = [
            FieldPin("critical warning 0", 0, [0x2D]) { $0.criticalWarning = S.CriticalWarning(rawValue: 0x2D) },
            .int("composite temperature 2:1", 1, 2, \.compositeTemperature),
            .int("available spare 3", 3, 1, \.availableSpare),
            .int("available spare threshold 4", 4, 1, \.availableSpareThreshold),
            .int("percentage used 5", 5, 1, \.percentageUsed),
            .int("endurance group critical warning summary 6", 6, 1, \.enduranceGroupCriticalWarningSummary),
            .int("data units read 47:32", 32, 16, \.dataUnitsRead),
            .int("data units written 63:48", 48, 16, \.dataUnitsWritten),
            .int("host read commands 79:64", 64, 16, \.hostReadCommands),
            .int("host write commands 95:80", 80, 16, \.hostWriteCommands),
            .int("controller busy time 111:96", 96, 16, \.controllerBusyTime),
            .int("power cycles 127:112", 112, 16, \.powerCycles),
            .int("power on hours 143:128", 128, 16, \.powerOnHours),
            .int("unsafe shutdowns 159:144", 144, 16, \.unsafeShutdowns),
            .int("media and data integrity errors 175:160", 160, 16, \.mediaErrors),
            .int("number of error information log entries 191:176", 176, 16, \.numberOfErrorInformationLogEntries),
            .int("warning composite temperature time 195:192", 192, 4, \.warningCompositeTemperatureTime),
            .int("critical composite temperature time 199:196", 196, 4, \.criticalCompositeTemperatureTime),
            .int("TMT1 transition count 219:216", 216, 4, \.thermalManagementTemperature1TransitionCount),
            .int("TMT2 transition count 223:220", 220, 4, \.thermalManagementTemperature2TransitionCount),
            .int("total time for TMT1 227:224", 224, 4, \.totalTimeForThermalManagementTemperature1),
            .int("total time for TMT2 231:228", 228, 4, \.totalTimeForThermalManagementTemperature2),
        ]
        // Temperature sensor N at bytes (199 + 2N):(198 + 2N), N = 1...8.
        for n in 1 ... 8 {
            let bytes = pattern(198 + 2 * n, 2)
            p.append(FieldPin("temperature sensor \(n)", 198 + 2 * n, bytes) { $0.temperatureSensors[n - 1] = value(bytes) })
        }
        return p
    }

    @Test func fieldOffsets() {
        checkPins(S(), Self.pins)
    }

    @Test func counters128BitLittleEndian() {
        var s = S()
        s.dataUnitsRead = UInt128(0x0102_0304_0506_0708) << 64 | 0x1112_1314_1516_1718
        let b = s.bytes
        #expect(Array(b[32 ..< 48]) == [0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
                                        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01])
        #expect(S(bytes: b)?.dataUnitsRead == s.dataUnitsRead)
        s.powerOnHours = .max
        #expect(S(bytes: s.bytes)?.powerOnHours == .max)
    }

    @Test func criticalWarningBits() {
        #expect(S.CriticalWarning.spare.rawValue == 0x01)
        #expect(S.CriticalWarning.temperature.rawValue == 0x02)
        #expect(S.CriticalWarning.reliability.rawValue == 0x04)
        #expect(S.CriticalWarning.readOnly.rawValue == 0x08)
        #expect(S.CriticalWarning.volatileMemoryBackup.rawValue == 0x10)
        #expect(S.CriticalWarning.persistentMemoryRegion.rawValue == 0x20)
        var s = S()
        s.criticalWarning = [.spare, .temperature]
        #expect(s.bytes[0] == 0x03)
        // Unknown bits round-trip.
        var raw = [UInt8](repeating: 0, count: 512)
        raw[0] = 0xC0
        #expect(S(bytes: raw)?.criticalWarning.rawValue == 0xC0)
        #expect(S(bytes: raw)?.bytes[0] == 0xC0)
    }

    @Test func temperatureSensorsAlwaysEight() {
        var s = S()
        s.temperatureSensors = [300]
        let d = S(bytes: s.bytes)
        #expect(d?.temperatureSensors == [300, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func shortPrefixesAndRoundTrip() {
        let full = checkPins(S(), Self.pins)
        checkShortPrefixes(full)
        #expect(S.size == 512)
        let b = full.bytes
        #expect(b[7 ..< 32].allSatisfy { $0 == 0 } && b[232 ..< 512].allSatisfy { $0 == 0 })
    }
}
