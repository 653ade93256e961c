/// The trace event catalogue: every event name nvmefs emits, defined once
/// (QEMU's hw/nvme trace-events spellings where QEMU has the event). Call
/// sites name a constant; no name is built at run time.

/// An ordinary trace event (recorded while `trace` has a reader).
public struct TraceEventName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let abort = Self("pci_nvme_abort")
    public static let adminCmd = Self("pci_nvme_admin_cmd")
    public static let aer = Self("pci_nvme_aer")
    public static let aerPostCqe = Self("pci_nvme_aer_post_cqe")
    public static let aioCb = Self("pci_nvme_aio_cb")
    public static let copy = Self("pci_nvme_copy")
    public static let copySourceRange = Self("pci_nvme_copy_source_range")
    public static let copyOut = Self("pci_nvme_copy_out")
    public static let cqFull = Self("pci_nvme_cq_full")
    public static let createCq = Self("pci_nvme_create_cq")
    public static let createSq = Self("pci_nvme_create_sq")
    public static let ctrlResetDone = Self("pci_nvme_ctrl_reset_done")
    /// Doorbell Buffer Config and the shadow doorbell accesses (§5.7, §7.13).
    public static let dbbufConfig = Self("pci_nvme_dbbuf_config")
    public static let updateSqTail = Self("pci_nvme_update_sq_tail")
    public static let updateSqEventidx = Self("pci_nvme_update_sq_eventidx")
    public static let updateCqHead = Self("pci_nvme_update_cq_head")
    public static let updateCqEventidx = Self("pci_nvme_update_cq_eventidx")
    public static let delCq = Self("pci_nvme_del_cq")
    public static let delSq = Self("pci_nvme_del_sq")
    public static let enqueueEvent = Self("pci_nvme_enqueue_event")
    public static let enqueueEventNoqueue = Self("pci_nvme_enqueue_event_noqueue")
    public static let enqueueReqCompletion = Self("pci_nvme_enqueue_req_completion")
    /// A Format NVM installed a namespace's new format (QEMU's event).
    public static let formatSet = Self("pci_nvme_format_set")
    /// A Format NVM began on its namespaces (after its checks).
    public static let formatStart = Self("nvmefs_format_start")
    /// A batch of a format's zeroing was issued (percent done so far).
    public static let formatProgress = Self("nvmefs_format_progress")
    /// A Format NVM command ended: `done`, or `abandoned` namespaces kept their format.
    public static let formatEnd = Self("nvmefs_format_end")
    /// A Device Self-test command (before its checks).
    public static let selfTest = Self("nvmefs_self_test")
    /// A Device Self-test operation ended (result as in the log, Figure 204).
    public static let selfTestEnd = Self("nvmefs_self_test_end")
    /// Namespace Management (before its checks; `sel` 0 create, 1 delete).
    public static let nsManagement = Self("nvmefs_ns_management")
    /// Namespace Attachment (before its checks; `sel` 0 attach, 1 detach).
    public static let nsAttachment = Self("pci_nvme_ns_attachment")
    /// A namespace creation passed its checks (its storage is being made).
    public static let nsCreate = Self("nvmefs_ns_create")
    /// Namespaces deleted (their storage is being removed).
    public static let nsDelete = Self("nvmefs_ns_delete")
    /// A namespace became attached (active) or detached (inactive).
    public static let nsAttach = Self("nvmefs_ns_attach")
    public static let nsDetach = Self("nvmefs_ns_detach")
    /// Both halves of a fused Compare and Write were fetched (§4.12).
    public static let fusedPair = Self("nvmefs_fused_pair")
    /// An I/O command waits for a fused operation holding its LBAs.
    public static let fusedWait = Self("nvmefs_fused_wait")
    /// Write cache (docs/WRITE-CACHE.md): the oldest writes written back to
    /// make room, a Flush writing back the dirty extents, a command waiting
    /// for a write-back of its range, a power cut.
    public static let cacheEvict = Self("nvmefs_cache_evict")
    public static let cacheFlush = Self("nvmefs_cache_flush")
    public static let cacheWait = Self("nvmefs_cache_wait")
    public static let powerCut = Self("nvmefs_power_cut")
    public static let aio = Self("pci_nvme_err_aio")
    public static let getLog = Self("pci_nvme_get_log")
    public static let getfeat = Self("pci_nvme_getfeat")
    public static let identify = Self("pci_nvme_identify")
    public static let ioCmd = Self("pci_nvme_io_cmd")
    public static let irqMasked = Self("pci_nvme_irq_masked")
    public static let irqMsix = Self("pci_nvme_irq_msix")
    public static let mmioAqattr = Self("pci_nvme_mmio_aqattr")
    public static let mmioCmbmsc = Self("pci_nvme_mmio_cmbmsc")
    public static let mmioDoorbellCQ = Self("pci_nvme_mmio_doorbell_cq")
    public static let mmioDoorbellSQ = Self("pci_nvme_mmio_doorbell_sq")
    public static let mmioIntmClr = Self("pci_nvme_mmio_intm_clr")
    public static let mmioIntmSet = Self("pci_nvme_mmio_intm_set")
    public static let mmioShutdownCleared = Self("pci_nvme_mmio_shutdown_cleared")
    public static let mmioShutdownSet = Self("pci_nvme_mmio_shutdown_set")
    public static let mmioStartSuccess = Self("pci_nvme_mmio_start_success")
    public static let mmioStopped = Self("pci_nvme_mmio_stopped")
    public static let mmioSubsystemReset = Self("pci_nvme_mmio_subsystem_reset")
    public static let mmioWrite = Self("pci_nvme_mmio_write")
    public static let reqAddAio = Self("pci_nvme_req_add_aio")
    public static let setfeat = Self("pci_nvme_setfeat")
    /// Write Uncorrectable marked LBAs (`marked`: the namespace's total).
    public static let writeUncor = Self("nvmefs_write_uncor")
    /// A Read, Compare or Verify touched a marked LBA (Unrecovered Read Error).
    public static let uncorrectableRead = Self("nvmefs_uncorrectable_read")
    /// A write cleared marks of Write Uncorrectable.
    public static let uncorrectableCleared = Self("nvmefs_uncorrectable_cleared")

    /// Firmware Image Download (dwords) and Firmware Commit (status, active and pending slot after it).
    public static let firmwareDownload = Self("nvmefs_fw_download")
    public static let firmwareCommit = Self("nvmefs_fw_commit")
    /// A firmware slot became the running firmware (at a commit or a reset).
    public static let firmwareActivated = Self("nvmefs_fw_activated")

    /// The file layer refused an operation (errno and reason as fields).
    public static let fileRefused = Self("nvmefs_file_refused")
    /// `faults` was cleared (every fault-injection rule removed).
    public static let faultsCleared = Self("nvmefs_faults_cleared")
}

/// Host misuse ("guest error", QEMU's `pci_nvme_err_*` and `pci_nvme_ub_*`
/// events): always recorded, counted in `stats`, never fatal.
public struct GuestErrorName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let addrRead = Self("pci_nvme_err_addr_read")
    public static let addrWrite = Self("pci_nvme_err_addr_write")
    public static let aerLimit = Self("pci_nvme_err_aer_limit")
    public static let cmbCbaInvalid = Self("pci_nvme_err_cmb_cba_invalid")
    /// Copy with a descriptor format other than 0 (OCFS bit 0 only).
    public static let copyInvalidFormat = Self("pci_nvme_err_copy_invalid_format")
    public static let featNotChangeable = Self("pci_nvme_err_feat_not_changeable")
    public static let featNotNsSpec = Self("pci_nvme_err_feat_not_ns_spec")
    public static let featNotSaveable = Self("pci_nvme_err_feat_not_saveable")
    /// A command reached a namespace being formatted (Format In Progress).
    public static let formatInProgress = Self("pci_nvme_err_format_in_progress")
    /// Format NVM asked for a format the namespace cannot have, or SES > 2.
    public static let invalidFormat = Self("pci_nvme_err_invalid_format")
    /// Device Self-test with an STC other than 1h, 2h, Fh.
    public static let invalidSelfTestCode = Self("nvmefs_err_invalid_self_test_code")
    /// Device Self-test started while one runs.
    public static let selfTestInProgress = Self("nvmefs_err_self_test_in_progress")
    public static let inactiveNs = Self("pci_nvme_err_inactive_ns")
    /// Namespace Management or Attachment refused (reason as a field).
    public static let nsCommandRefused = Self("nvmefs_err_ns_command")
    public static let invalidAdminOpc = Self("pci_nvme_err_invalid_admin_opc")
    public static let invalidCreateCqAddr = Self("pci_nvme_err_invalid_create_cq_addr")
    public static let invalidCreateCqCqid = Self("pci_nvme_err_invalid_create_cq_cqid")
    public static let invalidCreateCqQflags = Self("pci_nvme_err_invalid_create_cq_qflags")
    public static let invalidCreateCqSize = Self("pci_nvme_err_invalid_create_cq_size")
    public static let invalidCreateCqVector = Self("pci_nvme_err_invalid_create_cq_vector")
    public static let invalidCreateSqAddr = Self("pci_nvme_err_invalid_create_sq_addr")
    public static let invalidCreateSqCqid = Self("pci_nvme_err_invalid_create_sq_cqid")
    public static let invalidCreateSqQflags = Self("pci_nvme_err_invalid_create_sq_qflags")
    public static let invalidCreateSqSize = Self("pci_nvme_err_invalid_create_sq_size")
    public static let invalidCreateSqSqid = Self("pci_nvme_err_invalid_create_sq_sqid")
    public static let invalidDelCqCqid = Self("pci_nvme_err_invalid_del_cq_cqid")
    public static let invalidDelCqNotempty = Self("pci_nvme_err_invalid_del_cq_notempty")
    public static let invalidDelSq = Self("pci_nvme_err_invalid_del_sq")
    public static let invalidFuse = Self("pci_nvme_err_invalid_fuse")
    /// A Firmware Image Download piece off FWUG, too large, or overlapping one received.
    public static let firmwareDownload = Self("nvmefs_err_fw_download")
    /// A Firmware Commit refused (slot, image, commit action).
    public static let firmwareCommit = Self("nvmefs_err_fw_commit")
    /// A fused pair that is not Compare then Write.
    public static let fusedMismatch = Self("nvmefs_err_fused_mismatch")
    /// A fused pair whose halves name different LBAs.
    public static let fusedRange = Self("nvmefs_err_fused_range")
    public static let invalidGetfeat = Self("pci_nvme_err_invalid_getfeat")
    public static let invalidGetfeatSel = Self("pci_nvme_err_invalid_getfeat_sel")
    public static let invalidGetfeatTemp = Self("pci_nvme_err_invalid_getfeat_temp")
    public static let invalidIdentifyCns = Self("pci_nvme_err_invalid_identify_cns")
    public static let invalidIv = Self("pci_nvme_err_invalid_iv")
    public static let invalidLbaRange = Self("pci_nvme_err_invalid_lba_range")
    public static let invalidLogPage = Self("pci_nvme_err_invalid_log_page")
    public static let invalidNs = Self("pci_nvme_err_invalid_ns")
    public static let invalidOpc = Self("pci_nvme_err_invalid_opc")
    public static let invalidPsdt = Self("pci_nvme_err_invalid_psdt")
    public static let invalidPi = Self("pci_nvme_err_invalid_prinfo")
    public static let invalidMptr = Self("pci_nvme_err_invalid_mptr")
    public static let piCheck = Self("pci_nvme_err_pi_check")
    public static let invalidSetfeat = Self("pci_nvme_err_invalid_setfeat")
    public static let invalidSetfeatTemp = Self("pci_nvme_err_invalid_setfeat_temp")
    public static let keepAliveExpired = Self("pci_nvme_err_keep_alive_expired")
    public static let mdts = Self("pci_nvme_err_mdts")
    public static let nsReadonly = Self("pci_nvme_err_ns_readonly")
    public static let startfailAcqMisaligned = Self("pci_nvme_err_startfail_acq_misaligned")
    public static let startfailAcqUnbacked = Self("pci_nvme_err_startfail_acq_unbacked")
    public static let startfailAcqentSzZero = Self("pci_nvme_err_startfail_acqent_sz_zero")
    public static let startfailAsqMisaligned = Self("pci_nvme_err_startfail_asq_misaligned")
    public static let startfailAsqUnbacked = Self("pci_nvme_err_startfail_asq_unbacked")
    public static let startfailAsqentSzZero = Self("pci_nvme_err_startfail_asqent_sz_zero")
    public static let startfailCqOrSq = Self("pci_nvme_err_startfail_cq_or_sq")
    public static let startfailCqentTooSmall = Self("pci_nvme_err_startfail_cqent_too_small")
    public static let startfailCss = Self("pci_nvme_err_startfail_css")
    public static let startfailPageTooLarge = Self("pci_nvme_err_startfail_page_too_large")
    public static let startfailPageTooSmall = Self("pci_nvme_err_startfail_page_too_small")
    public static let startfailSqentTooSmall = Self("pci_nvme_err_startfail_sqent_too_small")
    public static let ccAmsUnsupported = Self("pci_nvme_ub_cc_ams_unsupported")
    public static let dbWrInvalidCq = Self("pci_nvme_ub_db_wr_invalid_cq")
    public static let dbWrInvalidCqhead = Self("pci_nvme_ub_db_wr_invalid_cqhead")
    public static let dbWrInvalidSq = Self("pci_nvme_ub_db_wr_invalid_sq")
    public static let dbWrInvalidSqtail = Self("pci_nvme_ub_db_wr_invalid_sqtail")
    public static let dbWrNotReady = Self("pci_nvme_ub_db_wr_not_ready")
    /// Doorbell Buffer Config with a buffer not page aligned, or outside host memory.
    public static let dbbufMisaligned = Self("nvmefs_err_dbbuf_misaligned")
    public static let dbbufUnbacked = Self("nvmefs_err_dbbuf_unbacked")
    /// A Shadow Doorbell entry past its queue's size (ignored).
    public static let shadowInvalidSqtail = Self("nvmefs_ub_shadow_invalid_sqtail")
    public static let shadowInvalidCqhead = Self("nvmefs_ub_shadow_invalid_cqhead")
    public static let mmiowrCmblocReserved = Self("pci_nvme_ub_mmiowr_cmbloc_reserved")
    public static let mmiowrCmbmscUnsupported = Self("pci_nvme_ub_mmiowr_cmbmsc_unsupported")
    public static let mmiowrCmbstsReadonly = Self("pci_nvme_ub_mmiowr_cmbsts_readonly")
    public static let mmiowrCmbszReadonly = Self("pci_nvme_ub_mmiowr_cmbsz_readonly")
    public static let mmiowrInvalid = Self("pci_nvme_ub_mmiowr_invalid")
    public static let mmiowrMisaligned32 = Self("pci_nvme_ub_mmiowr_misaligned32")
    public static let mmiowrRoCap = Self("pci_nvme_ub_mmiowr_ro_cap")
    public static let mmiowrRoCsts = Self("pci_nvme_ub_mmiowr_ro_csts")
    public static let mmiowrRoVs = Self("pci_nvme_ub_mmiowr_ro_vs")
    public static let mmiowrSsresetW1cUnsupported = Self("pci_nvme_ub_mmiowr_ssreset_w1c_unsupported")
}
