// The usage screen printed for -h and after a flag error.
#include <xrayd/config/cli_flags.h>

#include <string>

namespace xrayd {

std::string usage_text() {
    // The Go daemon's screen (pkg/cli/cli.go), TABs included; then xrayd's additions.
    return "Usage: X-Ray [options]\n"
           "\t-a\t--resource-arn\tAmazon Resource Name (ARN) of the AWS resource running the "
           "daemon.\n"
           "\t-o\t--local-mode\tDon't check for EC2 instance metadata.\n"
           "\t-m\t--buffer-memory\tChange the amount of memory in MB that buffers can use "
           "(minimum 3).\n"
           "\t-n\t--region\tSend segments to X-Ray service in a specific region.\n"
           "\t-b\t--bind\t\tOverrides default UDP address (127.0.0.1:2000).\n"
           "\t-t\t--bind-tcp\tOverrides default TCP address (127.0.0.1:2000).\n"
           "\t-r\t--role-arn\tAssume the specified IAM role to upload segments to a different "
           "account.\n"
           "\t-c\t--config\tLoad a configuration file from the specified path.\n"
           "\t-f\t--log-file\tOutput logs to the specified file path.\n"
           "\t-l\t--log-level\tLog level, from most verbose to least: dev, debug, info, warn, "
           "error, prod (default).\n"
           "\t-p\t--proxy-address\tProxy address through which to upload segments.\n"
           "\t-v\t--version\tShow AWS X-Ray daemon version.\n"
           "\t-h\t--help\t\tShow this screen\n"
           "\n"
           "xrayd options (long names only; DUR is a Go duration such as 100ms, 5s, 1m30s):\n"
           "\t--endpoint URL\t\tX-Ray endpoint URL with scheme (cfg.yaml Endpoint).\n"
           "\t--local-sink PATH|-\tWrite batches to PATH, or stdout for -, instead of "
           "uploading (Xrayd.LocalSink).\n"
           "\t--ca-bundle PATH\tCA certificates for TLS to X-Ray (Xrayd.CABundle).\n"
           "\t--linger DUR\t\tLongest wait of a segment before its batch is sent; default 100ms "
           "(Xrayd.Linger).\n"
           "\t--shutdown-timeout DUR\tDeadline for sending buffered segments at shutdown; "
           "default 5s (Xrayd.ShutdownTimeout).\n"
           "\t--request-timeout DUR\tTimeout of one PutTraceSegments request; default 5s "
           "(Xrayd.RequestTimeout).\n"
           "\t--receive-buffer BYTES\tUDP socket receive buffer to ask for; default 4194304 "
           "(Xrayd.ReceiveBufferBytes).\n"
           "\t--max-batch-bytes BYTES\tLargest PutTraceSegments request body; default 4194304 "
           "(Xrayd.MaxBatchBytes).\n"
           "\t--receivers N\t\tUDP receive threads, 0 = one per CPU; default 0 "
           "(Xrayd.Receivers).\n"
           "\t--io-backend NAME\tUDP receive engine: auto, io_uring or epoll; default auto "
           "(Xrayd.IoBackend).\n"
           "\t--steer-by-cpu\t\tSteer each datagram to the receiver of the CPU it arrived on "
           "(Xrayd.SteerByCpu).\n"
           "\t--pin-receivers\t\tPin receiver thread i to allowed CPU i (Xrayd.PinReceivers).\n"
           "\t--proxy-forward-all\tLet the TCP proxy forward every X-Ray call, not only sampling "
           "(Xrayd.ProxyForwardAll).\n"
           "\t--proxy-optional\tRun without the TCP proxy if its address cannot be bound "
           "(Xrayd.ProxyOptional).\n"
           "\t--concurrency N\t\tPutTraceSegments requests in flight; default 8 (cfg.yaml "
           "Concurrency).\n"
           "\t--log-rotation-bytes N\tLog file rotation size, for tests; default 52428800.\n"
           "\t--admin-address ADDR\tAdmin HTTP listener for /healthz, /readyz and /metrics, or "
           "off; default 127.0.0.1:2100 (Xrayd.AdminAddress).\n"
           "\t--ready-failure-threshold DUR\t/readyz fails once uploads have failed for this "
           "long; default 1m (Xrayd.ReadyFailureThreshold).\n"
           "\t--summary-interval DUR\tPeriod of the Info summary line, 0 = off; default 1m "
           "(Xrayd.SummaryInterval).\n"
           "\t--check-config\t\tPrint the effective configuration and exit 0, or the errors "
           "and exit 1.\n";
}

}  // namespace xrayd
