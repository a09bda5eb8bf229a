/*
 * validate.c - request body and field validation.  Messages name the field
 * and say what was expected and what came, because "invalid request" is the
 * kind of error that cost the original system two hours.
 */
#include "validate.h"

#include <string.h>

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

int validate_json(const char *body, size_t len, json_t **v, err_t *e)
{
    json_error_t jerr;

    if (!body || len == 0)
        return err_set(e, JOBD_EJSON, "the request body is empty; JSON is expected");
    *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*v)
        return err_set(e, JOBD_EJSON, "malformed JSON at line %d, column %d: %s", jerr.line,
                       jerr.column, jerr.text);
    return JOBD_OK;
}

int validate_body(const char *body, size_t len, bool optional, json_t **obj, err_t *e)
{
    json_t *v;
    int rc;

    if (!body || len == 0) {
        if (optional) {
            *obj = json_object();
            return JOBD_OK;
        }
        return err_set(e, JOBD_EJSON, "the request body is empty; a JSON object is expected");
    }
    if ((rc = validate_json(body, len, &v, e)) != JOBD_OK)
        return rc;
    if (!json_is_object(v)) {
        err_set(e, JOBD_EFIELD, "the request body must be a JSON object, not %s", type_name(v));
        json_decref(v);
        return e ? e->rc : JOBD_EFIELD;
    }
    *obj = v;
    return JOBD_OK;
}

static int absent(const char *field, bool required, err_t *e)
{
    if (required)
        return err_set(e, JOBD_EFIELD, "field '%s' is required", field);
    return JOBD_OK;
}

int validate_string(const json_t *obj, const char *field, bool required, size_t maxlen,
                    const char **out, err_t *e)
{
    json_t *v = json_object_get(obj, field);
    size_t len;

    if (!v || json_is_null(v)) {
        *out = NULL;
        return absent(field, required, e);
    }
    if (!json_is_string(v))
        return err_set(e, JOBD_EFIELD, "field '%s' must be a string, not %s", field, type_name(v));
    len = json_string_length(v);
    if (len == 0 || len > maxlen)
        return err_set(e, JOBD_EFIELD, "field '%s' must be 1 to %zu bytes long, not %zu", field,
                       maxlen, len);
    if (strlen(json_string_value(v)) != len)
        return err_set(e, JOBD_EFIELD, "field '%s' must not contain NUL characters", field);
    *out = json_string_value(v);
    return JOBD_OK;
}

int validate_int(const json_t *obj, const char *field, bool required, int64_t min, int64_t max,
                 int64_t def, int64_t *out, err_t *e)
{
    json_t *v = json_object_get(obj, field);
    json_int_t n;

    if (!v || json_is_null(v)) {
        *out = def;
        return absent(field, required, e);
    }
    if (!json_is_integer(v))
        return err_set(e, JOBD_EFIELD, "field '%s' must be an integer, not %s", field,
                       type_name(v));
    n = json_integer_value(v);
    if (n < min || n > max)
        return err_set(e, JOBD_EFIELD, "field '%s' must be between %lld and %lld, not %lld", field,
                       (long long)min, (long long)max, (long long)n);
    *out = n;
    return JOBD_OK;
}

bool validate_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return n >= 1 && n <= 64;
}

int validate_names(const json_t *obj, const char *field, size_t maxn, json_t **out, err_t *e)
{
    json_t *v = json_object_get(obj, field);
    json_t *item;
    size_t i;

    if (!v)
        return err_set(e, JOBD_EFIELD, "field '%s' is required", field);
    if (!json_is_array(v))
        return err_set(e, JOBD_EFIELD, "field '%s' must be an array of names, not %s", field,
                       type_name(v));
    if (json_array_size(v) == 0 || json_array_size(v) > maxn)
        return err_set(e, JOBD_EFIELD, "field '%s' must hold 1 to %zu names, not %zu", field, maxn,
                       json_array_size(v));
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || !validate_name(json_string_value(item)))
            return err_set(e, JOBD_EFIELD,
                           "field '%s' item %zu must be a name of 1 to 64 characters "
                           "A-Z a-z 0-9 _ . -",
                           field, i);
    }
    *out = v;
    return JOBD_OK;
}
