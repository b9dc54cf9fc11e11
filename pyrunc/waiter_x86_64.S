/*
 * The created container's waiting init, x86_64 (pyrunc/waiter.py).
 *
 * The Python init finishes the container's process (user, capabilities,
 * no_new_privs, an early seccomp filter, ...), answers READY, then execs
 * this program from a sealed memfd: what waits for `start` is ~16 KiB of
 * memory instead of a ~5 MiB Python process.  It does what the Python init
 * did after its wait, no more:
 *
 *   argv  = [name, DATA_FD (decimal), PATH, the process's args...]
 *   envp  = the process's environment
 *
 *   prctl(PR_SET_DUMPABLE, 0); prctl(PR_SET_NAME, "pyrunc:[2:INIT]")
 *   pread(DATA_FD, data, 4096 on); close(DATA_FD)
 *   accept4(LISTEN_FD, SOCK_CLOEXEC): `start` connects
 *   close(LISTEN_FD)
 *   the AppArmor exec label, if any: "/proc" opened and checked to be
 *     procfs (fstatfs), openat2(it, "PID/attr/.../exec", RESOLVE_BENEATH |
 *     NO_SYMLINKS | NO_MAGICLINKS | NO_XDEV), checked again, written
 *     (linux/procwrite.py does the same; CVE-2019-16884)
 *   send "0." (MSG_NOSIGNAL): `start` may return
 *   seccomp(SET_MODE_FILTER, FLAGS, the filter) if there is one
 *   execve(PATH, args, envp)
 *
 * A failure writes "pyrunc: <what>: <strerror>\n" to stderr and the same
 * without "pyrunc: " on the start connection, then exits 1.  The data
 * block (little-endian u32 words, made by waiter.py):
 *
 *   0 magic "PYWT"      4 listen fd          8 filter length (0: none)
 *  12 filter flags     16 filter offset     20 exec prefix offset
 *  24 exec prefix len  28 seccomp prefix offset  32 its length
 *  36 strerror table offset (NUL-terminated texts, errno 0 first)
 *  40 table entries    44 total length
 *  48 label file offset (NUL-terminated, relative to /proc; 0: no label)
 *  52 label offset     56 label length
 *  60 label error prefix offset              64 its length
 *  68 zero
 *
 * Offsets are from the block's start.  No libc; the stack holds argv and
 * one return address.
 */

        .set SYS_write, 1
        .set SYS_close, 3
        .set SYS_pread64, 17
        .set SYS_sendto, 44
        .set SYS_execve, 59
        .set SYS_prctl, 157
        .set SYS_accept4, 288
        .set SYS_exit_group, 231
        .set SYS_seccomp, 317
        .set SYS_openat, 257
        .set SYS_fstatfs, 138
        .set SYS_openat2, 437

        .set PR_SET_NAME, 15
        .set PR_SET_DUMPABLE, 4
        .set SOCK_CLOEXEC, 0x80000
        .set MSG_NOSIGNAL, 0x4000
        .set EINTR, 4
        .set ECONNABORTED, 103
        .set SECCOMP_SET_MODE_FILTER, 1
        .set AT_FDCWD, -100
        .set O_WRONLY, 1
        .set O_CLOEXEC, 0x80000
        .set O_PATH_DIR_NOFOLLOW, 0x200000 | 0x10000 | 0x20000 | O_CLOEXEC
        .set RESOLVE_BENEATH_NO_LINKS_NO_XDEV, 0x08 | 0x04 | 0x02 | 0x01
        .set PROC_SUPER_MAGIC, 0x9fa0
        .set EXDEV, 18

        .set DATA_OFFSET, 4096          /* waiter.DATA_OFFSET */
        .set BUF_SIZE, 65536            /* waiter.DATA_MAX */
        .set HEADER_SIZE, 72
        .set MAGIC, 0x54575950          /* "PYWT" */
        .set MSG_MAX, 4096

        .text
        .globl _start
_start:
        mov     %rsp, %rbp              /* argc, then argv[], NULL, envp[] */
        mov     $SYS_prctl, %eax
        mov     $PR_SET_DUMPABLE, %edi
        xor     %esi, %esi
        syscall
        mov     $SYS_prctl, %eax
        mov     $PR_SET_NAME, %edi
        lea     name(%rip), %rsi
        syscall

        cmpq    $4, (%rbp)              /* name, fd, path, args[0] at least */
        jb      bad_data
        mov     16(%rbp), %rsi          /* argv[1]: the data fd */
        xor     %edi, %edi
        xor     %ecx, %ecx
1:      movzbl  (%rsi), %eax
        test    %eax, %eax
        jz      2f
        sub     $'0', %eax
        cmp     $9, %eax
        ja      bad_data
        imul    $10, %edi, %edi
        add     %eax, %edi
        inc     %rsi
        inc     %ecx
        cmp     $9, %ecx
        ja      bad_data
        jmp     1b
2:      test    %ecx, %ecx
        jz      bad_data
        mov     %edi, %r12d             /* r12: the data fd */

        mov     $SYS_pread64, %eax
        lea     buf(%rip), %rsi
        mov     $BUF_SIZE, %edx
        mov     $DATA_OFFSET, %r10d
        syscall
        mov     %rax, %r13              /* r13: bytes read, or -errno */
        mov     $SYS_close, %eax
        mov     %r12d, %edi
        syscall

        lea     buf(%rip), %rbx         /* rbx: the data block */
        cmp     $HEADER_SIZE, %r13
        jl      bad_data
        cmpl    $MAGIC, (%rbx)
        jne     bad_data
        mov     44(%rbx), %eax
        cmp     %r13, %rax
        ja      bad_data

        mov     $-1, %r14d              /* r14: the start connection */
accept:
        mov     $SYS_accept4, %eax
        mov     4(%rbx), %edi
        xor     %esi, %esi
        xor     %edx, %edx
        mov     $SOCK_CLOEXEC, %r10d
        syscall
        cmp     $-EINTR, %rax
        je      accept
        cmp     $-ECONNABORTED, %rax
        je      accept
        test    %rax, %rax
        js      exit1
        mov     %eax, %r14d
        mov     $SYS_close, %eax
        mov     4(%rbx), %edi
        syscall

        mov     48(%rbx), %eax          /* the exec label */
        test    %eax, %eax
        jz      commit
        mov     $SYS_openat, %eax
        mov     $AT_FDCWD, %edi
        lea     proc(%rip), %rsi
        mov     $O_PATH_DIR_NOFOLLOW, %edx
        xor     %r10d, %r10d
        syscall
        test    %rax, %rax
        js      label_failed
        mov     %eax, %r12d             /* r12: /proc */
        mov     %r12d, %edi
        call    is_procfs
        test    %rax, %rax
        jnz     label_close_root
        lea     how(%rip), %rdx         /* struct open_how */
        movq    $O_WRONLY | O_CLOEXEC, (%rdx)
        movq    $0, 8(%rdx)
        movq    $RESOLVE_BENEATH_NO_LINKS_NO_XDEV, 16(%rdx)
        mov     $SYS_openat2, %eax
        mov     %r12d, %edi
        mov     48(%rbx), %esi
        add     %rbx, %rsi
        mov     $24, %r10d
        syscall
        mov     %rax, %r13              /* r13: the label file, or -errno */
        mov     $SYS_close, %eax
        mov     %r12d, %edi
        syscall
        mov     %r13, %rax
        test    %rax, %rax
        js      label_failed
        mov     %r13d, %edi
        call    is_procfs
        test    %rax, %rax
        jnz     label_close_file
        mov     $SYS_write, %eax
        mov     %r13d, %edi
        mov     52(%rbx), %esi
        add     %rbx, %rsi
        mov     56(%rbx), %edx
        syscall
label_close_file:
        mov     %rax, %r12              /* the result, past the close */
        mov     $SYS_close, %eax
        mov     %r13d, %edi
        syscall
        mov     %r12, %rax
        test    %rax, %rax
        jns     commit
        jmp     label_failed
label_close_root:
        mov     %rax, %r13
        mov     $SYS_close, %eax
        mov     %r12d, %edi
        syscall
        mov     %r13, %rax
label_failed:
        mov     60(%rbx), %r8d
        mov     64(%rbx), %r9d
        jmp     fail

commit:
        mov     $SYS_sendto, %eax       /* START_ACCEPTED, START_COMMITTED */
        mov     %r14d, %edi
        lea     committed(%rip), %rsi
        mov     $2, %edx
        mov     $MSG_NOSIGNAL, %r10d
        xor     %r8d, %r8d
        xor     %r9d, %r9d
        syscall

        mov     8(%rbx), %ecx           /* the filter under no_new_privs */
        test    %ecx, %ecx
        jz      exec
        lea     fprog(%rip), %rdx
        mov     %cx, (%rdx)
        mov     16(%rbx), %eax
        add     %rbx, %rax
        mov     %rax, 8(%rdx)
        mov     $SYS_seccomp, %eax
        mov     $SECCOMP_SET_MODE_FILTER, %edi
        mov     12(%rbx), %esi
        syscall
        test    %rax, %rax
        jz      exec
        mov     28(%rbx), %r8d          /* nonzero: -errno, or a thread id */
        mov     32(%rbx), %r9d
        jmp     fail

exec:
        mov     $SYS_execve, %eax
        mov     24(%rbp), %rdi          /* argv[2]: the path */
        lea     32(%rbp), %rsi          /* argv + 3: the process's args */
        mov     (%rbp), %rcx
        lea     16(%rbp,%rcx,8), %rdx   /* envp: past argv's NULL */
        syscall
        mov     20(%rbx), %r8d
        mov     24(%rbx), %r9d

/* rax: -errno; r8/r9: offset/length of the prefix ("exec PATH: ") */
fail:
        neg     %rax
        mov     %rax, %r15              /* r15: errno */
        lea     msg(%rip), %rdi
        lea     pyrunc(%rip), %rsi
        mov     $pyrunc_len, %ecx
        rep movsb
        lea     (%rbx,%r8), %rsi
        mov     %r9d, %ecx
        cmp     $MSG_MAX - 512, %ecx
        ja      exit1
        rep movsb
        cmp     40(%rbx), %r15d
        jae     3f
        mov     36(%rbx), %esi
        add     %rbx, %rsi              /* rsi: errno 0's text */
4:      test    %r15, %r15              /* past r15 NULs: errno r15's */
        jz      6f
5:      lodsb
        test    %al, %al
        jnz     5b
        dec     %r15
        jmp     4b
6:      mov     $256, %ecx              /* copy it, 256 bytes at most */
7:      lodsb
        test    %al, %al
        jz      3f
        stosb
        loop    7b
3:      movb    $'\n', (%rdi)
        inc     %rdi
        lea     msg(%rip), %rsi
        sub     %rsi, %rdi
        mov     %rdi, %r12              /* r12: the message's length */
        mov     $SYS_write, %eax
        mov     $2, %edi
        mov     %r12, %rdx
        syscall
        test    %r14d, %r14d
        js      exit1
        mov     $SYS_sendto, %eax       /* without "pyrunc: " and the newline */
        mov     %r14d, %edi
        lea     msg+pyrunc_len(%rip), %rsi
        lea     -pyrunc_len-1(%r12), %rdx
        mov     $MSG_NOSIGNAL, %r10d
        xor     %r8d, %r8d
        xor     %r9d, %r9d
        syscall
        jmp     exit1

/* edi: an fd.  rax = 0 if it is on procfs, else -errno (-EXDEV if not). */
is_procfs:
        mov     $SYS_fstatfs, %eax
        lea     statfs(%rip), %rsi
        syscall
        test    %rax, %rax
        js      1f
        cmpq    $PROC_SUPER_MAGIC, statfs(%rip)
        je      1f
        mov     $-EXDEV, %rax
1:      ret

bad_data:
        mov     $SYS_write, %eax
        mov     $2, %edi
        lea     bad(%rip), %rsi
        mov     $bad_len, %edx
        syscall
exit1:
        mov     $SYS_exit_group, %eax
        mov     $1, %edi
        syscall
        hlt

name:   .asciz  "pyrunc:[2:INIT]"
committed:
        .ascii  "0."
proc:   .asciz  "/proc"
pyrunc: .ascii  "pyrunc: "
        .set    pyrunc_len, . - pyrunc
bad:    .ascii  "pyrunc: init: the waiter's data is missing or malformed\n"
        .set    bad_len, . - bad

        .bss
        .balign 16
fprog:  .skip   16                      /* struct sock_fprog */
how:    .skip   24                      /* struct open_how */
statfs: .skip   120                     /* struct statfs */
msg:    .skip   MSG_MAX
buf:    .skip   BUF_SIZE

        .section .note.GNU-stack, "", @progbits
