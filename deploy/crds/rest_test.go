package crds_test

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// restClient is a bare client for raw requests (Tables).
func restClient() (*rest.RESTClient, error) {
	c := rest.CopyConfig(env.Config)
	c.APIPath = "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(runtime.NewScheme()).WithoutConversion()
	return rest.UnversionedRESTClientFor(c)
}
