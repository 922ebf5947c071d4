#include "CFathomBPF.h"

/* C23 #embed: SwiftPM rebuilds this file when the object changes. */
static const unsigned char capture_object[] = {
#embed "../../bpf/capture.bpf.o"
};

const unsigned char *fathom_capture_bpf_object(size_t *size)
{
	*size = sizeof(capture_object);
	return capture_object;
}

static const unsigned char tls_object[] = {
#embed "../../bpf/tls.bpf.o"
};

const unsigned char *fathom_tls_bpf_object(size_t *size)
{
	*size = sizeof(tls_object);
	return tls_object;
}

static const unsigned char process_object[] = {
#embed "../../bpf/process.bpf.o"
};

const unsigned char *fathom_process_bpf_object(size_t *size)
{
	*size = sizeof(process_object);
	return process_object;
}
