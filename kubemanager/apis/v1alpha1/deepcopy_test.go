package v1alpha1

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

// fill sets every exported field reachable from v to a non-zero value:
// strings, numbers and bools; slices and maps of one filled element;
// pointers to a filled value. A field added later is filled too, so a deep
// copy that forgets it fails the tests below.
func fill(v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, depth+1)
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	}
}

// shared reports the first path at which a and b share memory (a pointer,
// a slice's backing array or a map).
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		return shared(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() == 0 {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), path+"[]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			return path
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

func TestDeepCopy(t *testing.T) {
	for _, obj := range []runtime.Object{
		&VirtualNetwork{}, &VirtualNetworkList{},
		&Port{}, &PortList{},
		&FilamentNode{}, &FilamentNodeList{},
		&ServiceRecord{}, &ServiceRecordList{},
		&PolicyRecord{}, &PolicyRecordList{},
	} {
		name := reflect.TypeOf(obj).Elem().Name()
		fill(reflect.ValueOf(obj).Elem(), 0)
		cp := obj.DeepCopyObject()
		if !reflect.DeepEqual(obj, cp) {
			t.Errorf("%s: copy differs from the original:\n%#v\n%#v", name, obj, cp)
		}
		if p := shared(reflect.ValueOf(obj), reflect.ValueOf(cp), name); p != "" {
			t.Errorf("%s: the copy shares %s with the original", name, p)
		}
	}
}

func TestDeepCopyKeepsEmptyAndNil(t *testing.T) {
	p := &Port{Spec: PortSpec{IPs: []string{}}}
	cp := p.DeepCopy()
	if cp.Spec.IPs == nil || cp.Status.Conditions != nil {
		t.Errorf("empty IPs became nil or nil conditions became non-nil: %#v", cp)
	}
	var nilPort *Port
	if nilPort.DeepCopy() != nil {
		t.Error("a nil Port's copy is not nil")
	}
}
