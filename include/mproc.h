/* SPDX-License-Identifier: MIT */
/* mproc.h: the only header users include. */
#ifndef MPROC_H
#define MPROC_H

#include <mproc/common.h>
#include <mproc/error.h>
#include <mproc/obj.h>
#include <mproc/process.h>
#include <mproc/conn.h>
#include <mproc/sync.h>
#include <mproc/condition.h>
#include <mproc/event.h>
#include <mproc/barrier.h>
#include <mproc/shared.h>
#include <mproc/queue.h>
#include <mproc/manager.h>
#include <mproc/manager_server.h>

#define MPROC_VERSION_MAJOR 0
#define MPROC_VERSION_MINOR 1
#define MPROC_VERSION_PATCH 0

#endif
