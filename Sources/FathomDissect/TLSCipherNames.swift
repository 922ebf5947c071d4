/// IANA names of the cipher suites seen in practice; others are shown as hex.
enum TLSCipherNames {
    static func name(_ suite: UInt16) -> String {
        switch suite {
        case 0x1301: "TLS_AES_128_GCM_SHA256"
        case 0x1302: "TLS_AES_256_GCM_SHA384"
        case 0x1303: "TLS_CHACHA20_POLY1305_SHA256"
        case 0x1304: "TLS_AES_128_CCM_SHA256"
        case 0xc02b: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        case 0xc02c: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        case 0xc02f: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        case 0xc030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        case 0xcca8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        case 0xcca9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        case 0xc013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
        case 0xc014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"
        case 0x009c: "TLS_RSA_WITH_AES_128_GCM_SHA256"
        case 0x009d: "TLS_RSA_WITH_AES_256_GCM_SHA384"
        case 0x002f: "TLS_RSA_WITH_AES_128_CBC_SHA"
        case 0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA"
        case 0x009e: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"
        case 0x009f: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"
        default: "0x" + String(suite, radix: 16)
        }
    }
}
