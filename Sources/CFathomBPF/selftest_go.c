#include "CFathomBPF.h"
#include <string.h>

/* Stand-ins with the Go >= 1.17 register ABI of crypto/tls.(*Conn).Write and Read, for `fathom selftest`: receiver in
 * RAX (here a pointer to a socket fd), the slice's pointer and length in RBX and RCX, the goroutine in R14, n returned
 * in RAX. Each makes the write/read syscall itself, as Go's net package does inside the TLS call, and returns through
 * one of two RET instructions, so that the return probes found by decoding the code are exercised. */
__asm__(".pushsection .text\n"
	".globl fathom_selftest_go_write\n"
	".type fathom_selftest_go_write,@function\n"
	"fathom_selftest_go_write:\n"
	"	movl (%rax), %edi\n"
	"	movq %rbx, %rsi\n"
	"	movq %rcx, %rdx\n"
	"	movl $1, %eax\n" /* SYS_write */
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	js 1f\n"
	"	ret\n"
	"1:	xorl %eax, %eax\n"
	"	ret\n"
	".globl fathom_selftest_go_write_end\n"
	"fathom_selftest_go_write_end:\n"
	".size fathom_selftest_go_write, .-fathom_selftest_go_write\n"
	".globl fathom_selftest_go_read\n"
	".type fathom_selftest_go_read,@function\n"
	"fathom_selftest_go_read:\n"
	"	movl (%rax), %edi\n"
	"	movq %rbx, %rsi\n"
	"	movq %rcx, %rdx\n"
	"	xorl %eax, %eax\n" /* SYS_read */
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	js 2f\n"
	"	ret\n"
	"2:	xorl %eax, %eax\n"
	"	ret\n"
	".globl fathom_selftest_go_read_end\n"
	"fathom_selftest_go_read_end:\n"
	".size fathom_selftest_go_read, .-fathom_selftest_go_read\n"
	/* fathom_selftest_go_call(function, receiver, buffer, length, goroutine): the System V call (RDI, RSI, RDX, RCX,
	 * R8) turned into a Go register-ABI call; RBX and R14 are callee-saved in System V, so they are restored. */
	".globl fathom_selftest_go_call\n"
	".type fathom_selftest_go_call,@function\n"
	"fathom_selftest_go_call:\n"
	"	pushq %rbx\n"
	"	pushq %r14\n"
	"	pushq %rbp\n"
	"	movq %rdi, %r11\n"
	"	movq %rsi, %rax\n"
	"	movq %rdx, %rbx\n"
	"	movq %r8, %r14\n"
	"	callq *%r11\n"
	"	popq %rbp\n"
	"	popq %r14\n"
	"	popq %rbx\n"
	"	ret\n"
	".size fathom_selftest_go_call, .-fathom_selftest_go_call\n"
	".popsection\n");

extern const unsigned char fathom_selftest_go_write[], fathom_selftest_go_write_end[];
extern const unsigned char fathom_selftest_go_read[], fathom_selftest_go_read_end[];

const void *fathom_selftest_go_function(const char *name, size_t *size)
{
	if (strcmp(name, "Write") == 0) {
		*size = (size_t)(fathom_selftest_go_write_end - fathom_selftest_go_write);
		return fathom_selftest_go_write;
	}
	if (strcmp(name, "Read") == 0) {
		*size = (size_t)(fathom_selftest_go_read_end - fathom_selftest_go_read);
		return fathom_selftest_go_read;
	}
	return NULL;
}
