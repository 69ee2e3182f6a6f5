/* SPDX-License-Identifier: MIT */
/* manager/types_user.c: typeids registered with C constructors and methods (BaseManager.register). */
#include "manager/server_int.h"

#include <stdio.h>
#include <string.h>

/*
 * A registered struct mp_manager_type becomes an internal class whose
 * methods all go through user_call, which finds the user's method by the
 * index dispatch matched. The class, its exposed list and its method
 * table are allocated per registration and freed with it (registry.c).
 */

static int
user_create(struct mp__mgr_call *c, void **impl)
{
	const struct mp_manager_type *t = c->cls->user;
	mp_obj_t *error = NULL;
	int rv = t->create(c->args, c->kwds, impl, &error);
	if (rv == MP_EREMOTEERR) {
		if (error == NULL) {
			return -EINVAL;
		}
		mp_obj_unref(c->result);
		c->result = error;
	} else {
		mp_obj_unref(error);
	}
	return rv;
}

/*
 * destroy, repr and getvalue get only the impl pointer; the object's
 * class is not at hand there, so each registration wraps its impl with
 * the type it belongs to.
 */
struct boxed {
	const struct mp_manager_type *t;
	void *impl;
};

static int
boxed_create(struct mp__mgr_call *c, void **impl)
{
	struct boxed *b = mp__malloc(sizeof(*b));
	if (b == NULL) {
		return -ENOMEM;
	}
	b->t = c->cls->user;
	int rv = user_create(c, &b->impl);
	if (rv != 0) {
		mp__free(b);
		return rv;
	}
	*impl = b;
	return 0;
}

static void
boxed_destroy(void *impl)
{
	struct boxed *b = impl;
	if (b->t->free != NULL) {
		b->t->free(b->impl);
	}
	mp__free(b);
}

static int
boxed_call(struct mp__mgr_call *c)
{
	struct boxed *b = c->obj->impl;
	const struct mp_manager_method *m = &b->t->methods[c->method_index];
	mp_obj_t *result = NULL;
	int rv = m->call(b->impl, c->args, c->kwds, &result);
	if (rv == MP_EREMOTEERR) {
		if (mp_obj_type(result) != MP_TYPE_INSTANCE) {
			mp_obj_unref(result);
			return -EINVAL;
		}
		return mp__mgr_err(c, result);
	}
	if (rv != 0) {
		return rv < 0 ? rv : -EINVAL;
	}
	return mp__mgr_ret(c, result);
}

static int
boxed_repr(void *impl, bool as_str, char **out)
{
	(void)as_str;
	struct boxed *b = impl;
	if (b->t->repr != NULL) {
		return b->t->repr(b->impl, out);
	}
	char buf[160];
	snprintf(buf, sizeof(buf), "<%.100s object at %p>",
	    b->t->name != NULL ? b->t->name : "object", b->impl);
	*out = mp__strdup(buf);
	return *out == NULL ? -ENOMEM : 0;
}

static int
boxed_getvalue(void *impl, mp_obj_t **out)
{
	struct boxed *b = impl;
	if (b->t->getvalue == NULL) {
		return -ENOTSUP;
	}
	return b->t->getvalue(b->impl, out);
}

int
mp_manager_server_register(mp_manager_server_t *s, const char *typeid,
    const struct mp_manager_type *type)
{
	MP_ASSERT(s != NULL);
	if (typeid == NULL || typeid[0] == '\0' || type == NULL ||
	    type->create == NULL || type->n_methods > 60 ||
	    (type->n_methods > 0 && type->methods == NULL)) {
		return -EINVAL;
	}
	for (size_t i = 0; i < type->n_methods; i++) {
		if (type->methods[i].name == NULL ||
		    type->methods[i].call == NULL) {
			return -EINVAL;
		}
	}
	struct mp__mgr_class *cls = mp__calloc(1, sizeof(*cls));
	const char **exposed = mp__calloc(type->n_methods + 1,
	    sizeof(*exposed));
	struct mp__mgr_method *methods = mp__calloc(type->n_methods + 1,
	    sizeof(*methods));
	if (cls == NULL || exposed == NULL || methods == NULL) {
		mp__free(cls);
		mp__free(exposed);
		mp__free(methods);
		return -ENOMEM;
	}
	for (size_t i = 0; i < type->n_methods; i++) {
		exposed[i] = type->methods[i].name;
		methods[i].name = type->methods[i].name;
		methods[i].fn = boxed_call;
		methods[i].result_typeid = type->methods[i].result_typeid;
	}
	cls->typeid = typeid;
	cls->pyname = type->name != NULL ? type->name : typeid;
	cls->exposed = exposed;
	cls->methods = methods;
	cls->n_methods = type->n_methods;
	cls->create = boxed_create;
	cls->destroy = boxed_destroy;
	cls->repr = boxed_repr;
	cls->getvalue = boxed_getvalue;
	cls->user = type;
	int rv = mp__mgr_reg_add(s, typeid, cls, cls);
	if (rv != 0) {
		mp__free(exposed);
		mp__free(methods);
		mp__free(cls);
	}
	return rv;
}
