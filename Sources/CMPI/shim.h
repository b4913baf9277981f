// The part of <mpi.h> that Swift cannot import, as prefixed `static inline` functions.
//
// Open MPI defines its predefined handles (MPI_COMM_WORLD, MPI_BYTE, MPI_SUM, ...) as casts of the
// addresses of globals, and MPI_STATUS_IGNORE as a cast of 0: Swift imports neither. MPICH defines
// the same names as integer casts, and its handle types (MPI_Comm, MPI_Request, ...) are `int` where
// Open MPI's are pointers. So Swift never names a handle's underlying type: it gets predefined
// handles from the getters below and stores handles inside the small structs below, whose fields it
// can take the address of whatever the implementation. This header is compiled only when a module
// imports CMPI (the `MPI` trait), so machines without MPI never see it.

#ifndef CMPI_SHIM_H
#define CMPI_SHIM_H

#include <mpi.h>

// MARK: Handle holders

/// A communicator handle (a pointer in Open MPI, an int in MPICH).
typedef struct cmpi_comm {
    MPI_Comm handle;
} cmpi_comm;

/// A request handle of a nonblocking operation.
typedef struct cmpi_request {
    MPI_Request handle;
} cmpi_request;

/// A matched message handle (MPI_Mprobe / MPI_Mrecv).
typedef struct cmpi_message {
    MPI_Message handle;
} cmpi_message;

// MARK: Communicators

static inline cmpi_comm cmpi_comm_world(void) {
    cmpi_comm comm = {MPI_COMM_WORLD};
    return comm;
}

static inline cmpi_comm cmpi_comm_null(void) {
    cmpi_comm comm = {MPI_COMM_NULL};
    return comm;
}

/// Whether a handle can name a communicator: not MPI_COMM_NULL, and not the null pointer (or 0)
/// that Open MPI's MPI_Comm_f2c returns for an unknown Fortran handle.
///
/// MPICH's MPI_Comm_f2c is a cast that checks nothing, and MPICH aborts the job on an invalid
/// communicator instead of calling an error handler (it has none to call), so an MPICH handle must
/// also be shaped like a communicator: MPICH encodes the handle's kind in bits 30-31 (0: invalid)
/// and the object's kind in bits 26-29 (1: communicator), as MPI_COMM_WORLD (0x44000000) shows. A
/// well-formed handle of a communicator that does not exist still reaches MPICH.
static inline int cmpi_comm_is_valid(cmpi_comm comm) {
#if defined(MPICH)
    unsigned int bits = (unsigned int)comm.handle;
    if ((bits >> 30) == 0 || ((bits >> 26) & 0xF) != 1) return 0;
#endif
    return comm.handle != MPI_COMM_NULL && comm.handle != (MPI_Comm)0;
}

/// The portable integer (Fortran) handle of a communicator; MPICH defines MPI_Comm_c2f as a macro.
static inline MPI_Fint cmpi_comm_to_fortran(cmpi_comm comm) { return MPI_Comm_c2f(comm.handle); }

/// The communicator of a Fortran handle; MPI_COMM_NULL when the handle is unknown.
static inline cmpi_comm cmpi_comm_from_fortran(MPI_Fint handle) {
    cmpi_comm comm = {MPI_Comm_f2c(handle)};
    return comm;
}

/// The split type that groups the processes which can share memory: the ranks of one node.
static inline int cmpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }

static inline MPI_Info cmpi_info_null(void) { return MPI_INFO_NULL; }

// MARK: Requests and messages

static inline cmpi_request cmpi_request_null(void) {
    cmpi_request request = {MPI_REQUEST_NULL};
    return request;
}

static inline int cmpi_request_is_null(cmpi_request request) { return request.handle == MPI_REQUEST_NULL; }

static inline cmpi_message cmpi_message_null(void) {
    cmpi_message message = {MPI_MESSAGE_NULL};
    return message;
}

static inline MPI_Status *cmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }

static inline MPI_Status *cmpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }

// MARK: Datatypes and reduction operations

static inline MPI_Datatype cmpi_byte(void) { return MPI_BYTE; }

static inline MPI_Datatype cmpi_int64(void) { return MPI_INT64_T; }

static inline MPI_Op cmpi_op_min(void) { return MPI_MIN; }

static inline MPI_Op cmpi_op_max(void) { return MPI_MAX; }

static inline MPI_Op cmpi_op_sum(void) { return MPI_SUM; }

// MARK: Error handling

static inline MPI_Errhandler cmpi_errors_return(void) { return MPI_ERRORS_RETURN; }

static inline int cmpi_success(void) { return MPI_SUCCESS; }

static inline int cmpi_undefined(void) { return MPI_UNDEFINED; }

static inline int cmpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

/// Error classes that mean the caller passed something invalid (a rank, tag, root, count, ...).
static inline int cmpi_error_class_is_argument(int error_class) {
    switch (error_class) {
    case MPI_ERR_BUFFER:
    case MPI_ERR_COUNT:
    case MPI_ERR_TYPE:
    case MPI_ERR_TAG:
    case MPI_ERR_COMM:
    case MPI_ERR_RANK:
    case MPI_ERR_ROOT:
    case MPI_ERR_OP:
    case MPI_ERR_ARG:
        return 1;
    default:
        return 0;
    }
}

/// Error classes that mean a peer process failed: the ULFM extension (MPICH, Open MPI 5) only.
static inline int cmpi_error_class_is_process_failure(int error_class) {
#if defined(MPIX_ERR_PROC_FAILED)
    if (error_class == MPIX_ERR_PROC_FAILED) return 1;
#endif
#if defined(MPIX_ERR_REVOKED)
    if (error_class == MPIX_ERR_REVOKED) return 1;
#endif
    (void)error_class;
    return 0;
}

// MARK: Threads, tags, versions

static inline int cmpi_thread_single(void) { return MPI_THREAD_SINGLE; }

static inline int cmpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }

static inline int cmpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }

static inline int cmpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }

/// The attribute key of the largest tag value (at least 32767 by the standard).
static inline int cmpi_tag_ub_key(void) { return MPI_TAG_UB; }

static inline int cmpi_max_library_version_string(void) { return MPI_MAX_LIBRARY_VERSION_STRING; }

#endif
